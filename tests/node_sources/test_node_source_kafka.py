"""Fake node output -> `hyperliquid-node` source -> real Kafka.

A temporary directory stands in for `~/hl/data/node_fills`: hourly files in the node README's
layout, appended while the source runs (a line written in two parts, the hour turning to the
next file), then the source is stopped, more is written, and a new source over the same data
dir reads only what is new: every liquidation arrives exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.config import Settings
from stream.kafka import Topics
from stream.node_sources.hyperliquid import parse_line, render_fill
from stream.node_sources.service import NodeFillsSource
from stream.topics import ensure_topics
from tests.collectors.kafka_helpers import consume_until

pytestmark = pytest.mark.kafka

T0 = 1_798_761_600_000  # 2027-01-01T00:00:00Z
ORDINARY = (
    '["0xc64cc00b46101bd40aa1c3121195e85c0b0918d8",{"coin":"ETH","px":"3801.2","sz":"1.25",'
    '"side":"B","time":1798761600000,"startPosition":"3.0","dir":"Open Long","closedPnl":"0.0",'
    '"hash":"0x0a","oid":1,"crossed":true,"fee":"1.78","tid":7,"feeToken":"USDC"}]\n'
)


def liquidation(seq: int, side: str = "long") -> str:
    """Both lines of one liquidation fill (liquidated user, then counterparty)."""
    user = f"0x{seq:040x}"
    return "".join(
        f"{line}\n"
        for line in render_fill(user, "BTC", side, 90_000.0 + seq, 0.25, T0 + seq * 1_000, seq)
    )


def append(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        handle.write(text)
        handle.flush()


def expected(texts: list[str]) -> dict[str, dict]:
    events = {}
    for text in texts:
        for line in text.splitlines():
            for event in parse_line(line, T0).events:
                events[event.id] = event.to_dict()
    return events


async def until(condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)


def check(received: list[dict], want: dict[str, dict]) -> None:
    ids = [event["id"] for event in received]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    assert set(ids) == set(want)
    for event in received:
        assert {**event, "received_ts": T0} == want[event["id"]]


async def test_fills_files_to_kafka_exactly_once(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path / "data"})
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    fills = tmp_path / "node_fills"
    hour_a, hour_b, hour_c = "hourly/20270101/0", "hourly/20270101/1", "hourly/20270101/2"
    written = [liquidation(1) + ORDINARY + liquidation(2, "short")]
    append(fills, hour_a, written[0])

    source = NodeFillsSource(settings, fills, from_beginning=True, poll_interval_s=0.05)
    task = asyncio.create_task(source.run())
    await until(lambda: source.lines_read >= 5)
    # a line written in two parts is read once it is complete
    third = liquidation(3)
    append(fills, hour_a, third[:50])
    await asyncio.sleep(0.3)
    append(fills, hour_a, third[50:])
    # the hour turns: the node opens the next file
    fourth = liquidation(4, "short") + ORDINARY
    append(fills, hour_b, fourth)
    written += [third, fourth]
    await until(lambda: source.lines_read >= 10)
    first_run = await consume_until(
        settings, topics.liquidations, lambda values: len(values) >= 4, timeout_s=60
    )
    check(first_run, expected(written))
    source.stop.set()
    await task

    # written while no source runs, then a new source over the same data dir
    later = liquidation(5) + liquidation(6, "short")
    append(fills, hour_b, later)
    append(fills, hour_c, liquidation(7))
    written += [later, liquidation(7)]
    again = NodeFillsSource(settings, fills, from_beginning=True, poll_interval_s=0.05)
    task = asyncio.create_task(again.run())
    await until(lambda: again.lines_read >= 6)
    assert again.lines_read == 6, "the restarted source read old lines again"
    both_runs = await consume_until(
        settings, topics.liquidations, lambda values: len(values) >= 7, timeout_s=60
    )
    again.stop.set()
    await task
    check(both_runs, expected(written))
    assert len(expected(written)) == 7


async def test_unfinished_line_is_dead_lettered_and_status_is_reported(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(
        update={"data_dir": tmp_path / "data", "status_interval_s": 1.0}
    )
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    fills = tmp_path / "node_fills_by_block"
    append(fills, "hourly/20270101/5", '{"block_number": 1, "events": [["0xab')
    append(fills, "hourly/20270101/6", '{"block_number": 2, "events": []}\n')
    source = NodeFillsSource(settings, fills, from_beginning=True, poll_interval_s=0.05)
    task = asyncio.create_task(source.run())
    await until(lambda: source.lines_read >= 1)
    letters = await consume_until(
        settings, topics.deadletter, lambda values: len(values) >= 1, timeout_s=60
    )
    statuses = await consume_until(
        settings,
        topics.status,
        lambda values: any(v["state"] == "heartbeat" for v in values),
        timeout_s=60,
    )
    source.stop.set()
    await task
    assert [(d["source"], d["reason"]) for d in letters] == [("hyperliquid-node", "truncated_line")]
    assert letters[0]["payload"] == (
        'unfinished line at the end of hourly/20270101/5: {"block_number": 1, "events": [["0xab'
    )
    states = [s["state"] for s in statuses]
    assert {"coverage", "connected", "heartbeat"} <= set(states)
    assert all((s["exchange"], s["feed"]) == ("hyperliquid", "hyperliquid-node") for s in statuses)
    beat = next(s for s in statuses if s["state"] == "heartbeat")
    assert beat["connected"] is True and beat["wildcard"] is True
    assert beat["interval_s"] == 1.0 and beat["file"] == "hourly/20270101/6"


async def test_a_silent_node_is_reported_disconnected_until_lines_return(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path / "data"})
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    fills = tmp_path / "node_fills"
    append(fills, "hourly/20270101/7", liquidation(1))
    source = NodeFillsSource(
        settings, fills, from_beginning=True, poll_interval_s=0.05, idle_timeout_s=0.5
    )
    task = asyncio.create_task(source.run())
    await until(lambda: source.lines_read >= 2)
    await until(lambda: not source.flowing)  # the node fell silent
    append(fills, "hourly/20270101/7", liquidation(2))
    await until(lambda: source.flowing)
    source.stop.set()
    await task
    statuses = await consume_until(
        settings,
        topics.status,
        lambda values: [v.get("reason") for v in values].count("shutdown") == 1,
        timeout_s=60,
    )
    flow = [(s["state"], s.get("reason")) for s in statuses if s["state"] != "coverage"]
    assert [f for f in flow if f[1] in ("lines_flowing", "node_idle", "shutdown")] == [
        ("connected", "lines_flowing"),
        ("disconnected", "node_idle"),
        ("connected", "lines_flowing"),
        ("disconnected", "shutdown"),
    ]
