"""Replaying the demo now: event times re-based to the replay's start, frames sent when due."""

from __future__ import annotations

import itertools
import time

import pytest
from websockets.asyncio.client import connect

from stream.collectors.instruments import InstrumentBook
from stream.collectors.registry import FEEDS
from stream.demo.replay import ReplayClock, replay_frames
from stream.demo.session import CASCADE_MS, feed_session
from stream.fake_exchange import FakeExchange, Timed

ORIGIN_MS = 1_800_000_000_123


@pytest.mark.parametrize("speed", [1.0, 2.0])
@pytest.mark.parametrize("name", sorted(FEEDS))
def test_replay_rebases_each_order_to_the_replay_start(name: str, speed: float) -> None:
    feed = FEEDS[name]
    clock = ReplayClock(ORIGIN_MS, 500.0, speed)
    book = InstrumentBook(feed, url="")
    # Far enough to run past the cascade into the first quiet period.
    in_cascade = itertools.takewhile(lambda o: o.offset_ms < CASCADE_MS, feed_session(name))
    count = sum(1 for _ in in_cascade) + 3
    pairs = zip(
        itertools.islice(feed_session(name), count),
        itertools.islice(replay_frames(feed, clock), count),
        strict=True,
    )
    for order, frame in pairs:
        expected_ts = ORIGIN_MS + round(order.offset_ms / speed)
        assert frame.due_s == pytest.approx(500.0 + order.offset_ms / speed / 1000)
        (event,) = feed.parse(frame.text, book, expected_ts).events
        assert event.ts == expected_ts  # venues without an event time: the receive time
        assert (event.symbol, event.side) == (order.symbol, order.side)
        assert event.notional_usd == pytest.approx(order.notional_usd, rel=1e-9)
    assert order.offset_ms > CASCADE_MS


def ids(name: str, clock: ReplayClock, count: int = 300) -> list[str]:
    feed = FEEDS[name]
    book = InstrumentBook(feed, url="")
    frames = itertools.islice(replay_frames(feed, clock), count)
    return [e.id for f in frames for e in feed.parse(f.text, book, ORIGIN_MS).events]


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_ids_are_unique_within_a_run_and_differ_between_runs(name: str) -> None:
    """The worker remembers forwarded ids for a day: a second `liqstream dev` that day must
    not have its events dropped as duplicates of the first run's."""
    first = ids(name, ReplayClock(ORIGIN_MS, 0.0))
    assert len(set(first)) == len(first)
    later = ids(name, ReplayClock(ORIGIN_MS + 1000, 0.0))
    assert not set(first) & set(later)


async def test_the_fake_exchange_sends_timed_frames_in_order_when_due() -> None:
    feed = FEEDS["binance-usdm"]  # subscribed by URL: frames flow on connect
    now = time.monotonic()
    frames = [Timed(now - 1.0, "late"), Timed(now + 0.2, "soon"), Timed(now + 0.4, "later")]
    fake = FakeExchange(feed, frames, interval_s=0)
    url = await fake.start()
    received = []
    try:
        async with connect(url) as ws:
            for _ in frames:
                received.append((await ws.recv(), time.monotonic()))
    finally:
        await fake.stop()
    assert [text for text, _ in received] == ["late", "soon", "later"]
    for (_, at), frame in zip(received, frames, strict=True):
        assert at >= frame.due_s  # never early; late ones go at once
