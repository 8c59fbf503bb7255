"""`liqstream dev`'s stand-in node: the demo session's hyperliquid orders as a node's fills
output (the layout and line format of `stream.node_sources.hyperliquid`'s docstring), which
the follower and parser turn back into exactly those orders; ordinary fills yield nothing."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from pathlib import Path

import pytest

from stream.demo.node_fills import NodeFillsWriter, hour_file, node_writes
from stream.demo.replay import ReplayClock
from stream.demo.session import CASCADE_MS, NODE_FEED_WEIGHTS, feed_session, node_cascade
from stream.node_sources.follow import HourlyFollower, hour_files
from stream.node_sources.hyperliquid import may_hold_liquidation, parse_line
from stream.node_sources.service import FEED_NAME

HOUR_MS = 3_600_000
HANG_GUARD_S = 120.0  # a writer that has written nothing by then is stuck, not slow
ORIGIN_MS = 1_798_768_800_000 - 1_000  # 2027-01-01T02:00:00Z less a second


def test_hour_file_is_the_nodes_layout() -> None:
    assert hour_file(1_798_761_600_000) == "hourly/20270101/0"  # 00:00 UTC, no padding
    assert hour_file(1_798_761_600_000 + 13 * HOUR_MS + 59_999) == "hourly/20270101/13"
    assert hour_file(1_798_761_600_000 + 24 * HOUR_MS) == "hourly/20270102/0"


def test_the_node_feed_tells_the_cascade_at_its_share() -> None:
    assert set(NODE_FEED_WEIGHTS) == {FEED_NAME}
    orders = node_cascade(FEED_NAME)
    assert 30 <= len(orders) <= 150  # about 6 % of the market's cascade
    assert sum(o.side == "long" for o in orders) / len(orders) > 0.7
    assert {o.symbol for o in orders} >= {"BTC", "ETH", "SOL"}
    after = list(itertools.islice(feed_session(FEED_NAME), len(orders) + 5))
    assert after[: len(orders)] == list(orders)
    assert all(o.offset_ms >= CASCADE_MS for o in after[len(orders) :])  # then the quiet market


@pytest.mark.parametrize("speed", [1.0, 3.0])
def test_each_liquidation_parses_back_to_its_order_and_ordinary_fills_to_nothing(
    speed: float,
) -> None:
    clock = ReplayClock(ORIGIN_MS, 100.0, speed)
    writes = list(itertools.islice(node_writes(clock), 400))
    liquidations = [w for w in writes if w.liquidation is not None]
    ordinary = [w for w in writes if w.liquidation is None]
    assert len(liquidations) >= 30 and len(ordinary) >= 50
    assert [w.due_s for w in writes] == sorted(w.due_s for w in writes)
    for write in ordinary:
        (line,) = write.lines
        assert not may_hold_liquidation(line)
        parsed = parse_line(line, ORIGIN_MS)
        assert (parsed.events, parsed.rejects) == ([], [])
    ids = set()
    for seq, write in enumerate(liquidations, start=clock.first_seq()):
        order = write.liquidation
        assert order is not None
        assert write.due_s == pytest.approx(clock.due_s(order.offset_ms))
        liquidated, counterparty = (parse_line(line, ORIGIN_MS) for line in write.lines)
        assert (counterparty.events, counterparty.rejects) == ([], [])  # the other side
        assert liquidated.rejects == []
        (event,) = liquidated.events
        coin = "PEPE" if order.symbol == "kPEPE" else order.symbol
        assert (event.exchange, event.symbol, event.coin, event.side) == (
            "hyperliquid",
            order.symbol,
            coin,
            order.side,
        )
        assert event.notional_usd == pytest.approx(order.notional_usd, rel=1e-9)
        assert event.price == pytest.approx(order.price, rel=1e-9)
        assert event.ts == clock.event_ts_ms(order.offset_ms)
        assert event.id == f"hyperliquid:{seq}:0x{seq:040x}"
        ids.add(event.id)
    assert len(ids) == len(liquidations)


def test_a_kpepe_fill_is_in_thousands_of_coins() -> None:
    clock = ReplayClock(ORIGIN_MS, 0.0)
    write = next(
        w
        for w in itertools.islice(node_writes(clock), 5_000)
        if w.liquidation is not None and w.liquidation.symbol == "kPEPE"
    )
    order = write.liquidation
    assert order is not None
    (event,) = parse_line(write.lines[0], ORIGIN_MS).events
    assert '"coin":"kPEPE"' in write.lines[0]
    assert event.quantity == pytest.approx(order.quantity, rel=1e-9)  # in PEPE
    assert event.price == pytest.approx(order.price, rel=1e-9) and event.price < 0.001


async def test_the_writer_rotates_when_the_hour_turns_and_the_follower_reads_it_all(
    tmp_path: Path,
) -> None:
    """The writer's wall clock starts a second before 2 o'clock and advances 100 ms a write, so
    the hour turns at its tenth write: lines go to the next hour's file from then on, and a
    follower reading while it writes, as the node source does, gets every line once, in order."""
    calls = itertools.count()
    clock = ReplayClock(ORIGIN_MS, time.monotonic(), speed=30.0)  # the cascade in 3 s
    writer = NodeFillsWriter(tmp_path, clock, wall_ms=lambda: ORIGIN_MS + 100 * next(calls))
    follower = HourlyFollower(tmp_path, None, from_beginning=True)
    task = asyncio.create_task(writer.run())
    lines: list[str] = []
    async with asyncio.timeout(HANG_GUARD_S):
        while len(writer.written) < 20:
            await asyncio.sleep(0.05)
            lines += follower.read().lines
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    lines += follower.read().lines
    assert hour_files(tmp_path) == ["hourly/20270101/1", "hourly/20270101/2"]
    first = (tmp_path / "hourly/20270101/1").read_text().splitlines()
    assert len(first) >= 10  # ten writes, one or two lines each
    events = [event for line in lines for event in parse_line(line, ORIGIN_MS).events]
    written = [w.liquidation for w in writer.written if w.liquidation is not None]
    assert [(e.symbol, e.side) for e in events] == [(o.symbol, o.side) for o in written]
    assert [e.notional_usd for e in events] == pytest.approx(
        [o.notional_usd for o in written], rel=1e-9
    )
    assert len(lines) > 2 * len(written)  # ordinary fills were written and passed over
