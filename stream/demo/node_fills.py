"""A stand-in Hyperliquid node for `liqstream dev`: the demo session's hyperliquid orders written
as a node started with `--write-fills` writes them, for the `hyperliquid-node` source to follow.

The layout and lines are the node's (see `stream.node_sources.hyperliquid`): one fill per line
in `hourly/{YYYYMMDD}/{hour}` (UTC, hour unpadded), a new file when the hour turns, never a
line added to a past hour's file. Each liquidation is two lines, the liquidated user's fill and
the counterparty's (both carry the `liquidation` object); in between, ordinary fills of the
market (no `liquidation` object), one every `ORDINARY_EVERY_MS`, as a node writes fills every
block: the source must pass over them, and they keep the feed alive in a quiet market.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from stream.demo.replay import ReplayClock
from stream.demo.session import SEED, DemoOrder, feed_session, instruments, price_usd
from stream.node_sources.follow import hour_key
from stream.node_sources.hyperliquid import render_fill
from stream.node_sources.service import FEED_NAME

ORDINARY_EVERY_MS = 1_000  # session time between two ordinary (non-liquidation) fills
_ORDINARY_TID_OFFSET = 500_000  # ordinary fills' trade ids, apart from the liquidations'
_TAKER = "0x8cc94dc843e1ea7a19805e0cca43001123512b6a"


@dataclass(frozen=True, slots=True)
class NodeWrite:
    """Lines the node appends at once, no earlier than `due_s` (monotonic clock)."""

    due_s: float
    lines: tuple[str, ...]
    liquidation: DemoOrder | None  # the order these lines liquidate, None for ordinary fills


def hour_file(ts_ms: int) -> str:
    """The node's file for a moment: `hourly/20270101/7` (UTC, hour without padding)."""
    moment = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return f"hourly/{moment:%Y%m%d}/{moment.hour}"


def liquidation_lines(order: DemoOrder, ts_ms: int, tid: int) -> tuple[str, ...]:
    """The liquidated user's and the counterparty's fill of one demo order. A `k` coin is
    quoted per thousand coins, so size and price are in those units (same notional)."""
    units = instruments(order.feed)[order.symbol].units
    user = f"0x{tid:040x}"  # one liquidated account per order
    lines = render_fill(
        user, order.symbol, order.side, order.price * units, order.quantity / units, ts_ms, tid
    )
    return tuple(lines)


def ordinary_line(offset_ms: int, ts_ms: int, tid: int) -> str:
    """An ordinary fill (a taker buying BTC): no `liquidation` object, so no event."""
    fill = {
        "coin": "BTC",
        "px": f"{price_usd('BTC', offset_ms):.1f}",
        "sz": "0.01",
        "side": "B",
        "time": ts_ms,
        "startPosition": "0.0",
        "dir": "Open Long",
        "closedPnl": "0.0",
        "hash": f"0x{tid:064x}",
        "oid": tid * 2,
        "crossed": True,
        "fee": "0.4",
        "tid": tid,
        "feeToken": "USDC",
    }
    return orjson.dumps([_TAKER, fill]).decode()


def node_writes(
    clock: ReplayClock, seed: int = SEED, ordinary_every_ms: int = ORDINARY_EVERY_MS
) -> Iterator[NodeWrite]:
    """Endless, in time order: the node feed's session orders (trade id = the replay's
    sequence number, so ids differ between runs) and an ordinary fill every
    `ordinary_every_ms` of session time."""
    orders = enumerate(feed_session(FEED_NAME, seed), start=clock.first_seq())
    ordinary = itertools.count(0, ordinary_every_ms)
    ordinary_tid = itertools.count(clock.first_seq() + _ORDINARY_TID_OFFSET)
    next_ordinary_ms = next(ordinary)
    for tid, order in orders:
        while next_ordinary_ms < order.offset_ms:
            ts_ms = clock.event_ts_ms(next_ordinary_ms)
            line = ordinary_line(next_ordinary_ms, ts_ms, next(ordinary_tid))
            yield NodeWrite(clock.due_s(next_ordinary_ms), (line,), None)
            next_ordinary_ms = next(ordinary)
        ts_ms = clock.event_ts_ms(order.offset_ms)
        yield NodeWrite(clock.due_s(order.offset_ms), liquidation_lines(order, ts_ms, tid), order)


class NodeFillsWriter:
    """Appends `node_writes` to the hourly files under `root`, each when due, until cancelled.

    The file is chosen by the wall clock when writing (`wall_ms`; a test may shift it to see
    the hour turn) and never goes back to an earlier hour, as a node's does not."""

    def __init__(
        self,
        root: Path,
        clock: ReplayClock,
        *,
        seed: int = SEED,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.root = root
        self.clock = clock
        self.seed = seed
        self.wall_ms = wall_ms
        self.file: str | None = None  # the hour file being written
        # the latest liquidations written, oldest first (for tests and the curious)
        self.written: deque[NodeWrite] = deque(maxlen=10_000)

    def _append(self, write: NodeWrite) -> None:
        relative = hour_file(self.wall_ms())
        if self.file is not None and (hour_key(relative) or ("", 0)) < (
            hour_key(self.file) or ("", 0)
        ):
            relative = self.file  # the wall clock stepped back: stay in the newest hour
        self.file = relative
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # a few hundred bytes to a local file: too little to be worth a thread
        with path.open("a", encoding="utf-8") as handle:
            handle.write("".join(f"{line}\n" for line in write.lines))
        if write.liquidation is not None:
            self.written.append(write)

    async def run(self) -> None:
        for write in node_writes(self.clock, self.seed):
            delay_s = write.due_s - time.monotonic()
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            self._append(write)
