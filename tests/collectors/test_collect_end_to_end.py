"""Fake exchange -> collector -> real Kafka, for every feed in the registry.

The fake speaks each venue's own protocol (path, subscribe/ack, heartbeats, compression); the
events read back from Kafka must equal what the venue's parser makes of the frames the fake
actually sent, each exactly once.
"""

from __future__ import annotations

import asyncio
from itertools import islice
from pathlib import Path

import pytest

from stream.collectors.instruments import bundled_snapshot
from stream.collectors.registry import FEEDS
from stream.collectors.service import CollectorService
from stream.collectors.venue import Feed
from stream.config import Settings
from stream.fake_exchange import FakeExchange, Script, generated_frames
from stream.kafka import Topics
from stream.topics import ensure_topics
from tests.collectors.kafka_helpers import consume_until

pytestmark = pytest.mark.kafka

MARK_TS = 1_262_304_000_001  # a receive time no venue timestamp can equal


def expected_events(feed: Feed, frames: list[str]) -> dict[str, dict]:
    instruments = bundled_snapshot(feed.name)
    expected: dict[str, dict] = {}
    for frame in frames:
        for event in feed.parse(frame, instruments, MARK_TS).events:
            expected.setdefault(event.id, event.to_dict())
    return expected


def assert_same_events(expected: dict[str, dict], received: list[dict]) -> None:
    ids = [event["id"] for event in received]
    assert len(ids) == len(set(ids)), "an event arrived twice"
    assert set(ids) == set(expected)
    for event in received:
        want = dict(expected[event["id"]])
        if want["ts"] == MARK_TS:  # the venue gives no event time: the receive time is used
            assert event["ts"] == event["received_ts"]
            want["ts"] = event["ts"]
        want["received_ts"] = event["received_ts"]
        assert event == want


async def run_collector(
    settings: Settings, feed: Feed, url: str, until: asyncio.Event, **options: object
) -> CollectorService:
    service = CollectorService(
        settings, [feed], urls={feed.name: url}, refresh_instruments=False, **options
    )
    task = asyncio.create_task(service.run())
    await until.wait()
    service.stop.set()
    await task
    return service


@pytest.mark.parametrize("feed_name", sorted(FEEDS))
async def test_feed_end_to_end(feed_name: str, kafka_settings: Settings, tmp_path: Path) -> None:
    feed = FEEDS[feed_name]
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    frames = list(islice(generated_frames(feed, seed=11), 25))
    fake = FakeExchange(
        feed,
        frames,
        interval_s=0.01,
        heartbeat_interval_s=0.3,
        heartbeat_timeout_s=2.0,
        symbols=bundled_snapshot(feed.name),
    )
    url = await fake.start()
    topics = Topics.with_prefix(settings.topic_prefix)
    try:
        service = await run_collector(settings, feed, url, fake.exhausted)
    finally:
        await fake.stop()
    assert fake.sent == frames
    expected = expected_events(feed, frames)
    assert len(expected) == len(frames)  # each generated frame carries one liquidation
    received = await consume_until(settings, topics.liquidations, lambda v: len(v) >= len(expected))
    assert_same_events(expected, received)
    assert service.publisher.pending == 0
    listed = len(bundled_snapshot(feed.name))

    def covered(records: list[dict]) -> bool:
        return any(
            r["state"] == "coverage" and r["instruments_subscribed"] == listed for r in records
        )

    statuses = await consume_until(settings, topics.status, covered, timeout_s=10)
    assert [s["state"] for s in statuses][:1] == ["connected"]
    assert {s["feed"] for s in statuses} == {feed.name}
    coverage = next(s for s in statuses if s["state"] == "coverage" and covered([s]))
    assert coverage["instruments_listed"] == listed > 0 and coverage["rejected"] == []
    assert coverage.get("wildcard", False) is (feed.per_symbol is None)
    raw = await consume_until(settings, topics.raw, lambda v: len(v) >= len(frames), timeout_s=10)
    assert [r["frame"] for r in raw if r["frame"] in frames] == frames


async def test_drop_and_stall_mid_stream(kafka_settings: Settings, tmp_path: Path) -> None:
    """Every event sent while connected arrives once; the outage shows as a gap."""
    feed = FEEDS["binance-usdm"]
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    frames = list(islice(generated_frames(feed, seed=5), 60))
    fake = FakeExchange(
        feed,
        frames,
        interval_s=0.005,
        script=Script(drop_after=[20, 15], stall_s=1.0, replay_on_subscribe=5),
    )
    url = await fake.start()
    topics = Topics.with_prefix(settings.topic_prefix)
    try:
        await run_collector(settings, feed, url, fake.exhausted, max_backoff_s=0.3)
    finally:
        await fake.stop()
    assert fake.connections >= 3
    expected = expected_events(feed, fake.sent)
    received = await consume_until(settings, topics.liquidations, lambda v: len(v) >= len(expected))
    assert_same_events(expected, received)

    statuses = await consume_until(
        settings, topics.status, lambda v: sum(s["state"] == "gap" for s in v) >= 2, timeout_s=15
    )
    gaps = [s for s in statuses if s["state"] == "gap"]
    assert len(gaps) == 2
    for gap in gaps:
        assert gap["gap_end"] - gap["gap_start"] >= 900  # the 1 s stall, within clock rounding
    assert "disconnected" in [s["state"] for s in statuses]


async def test_bad_frames_are_dead_lettered_and_the_collector_carries_on(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    feed = FEEDS["binance-usdm"]
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    good = list(islice(generated_frames(feed, seed=3), 3))
    bad = [
        "{not json",
        '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL"',  # truncated
        '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",'
        '"f":"IOC","q":"NaN","p":"9910","ap":"NaN","X":"FILLED","l":"0","z":"NaN",'
        '"T":1568014460893}}',
        '{"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT",'
        '"f":"IOC","q":"-1","p":"9910","ap":"9910","X":"FILLED","l":"-1","z":"-1",'
        '"T":1568014460893}}',
        "[1, 2, 3]",
        "x" * 1_100_000,  # oversized
    ]
    frames = [good[0], *bad, good[1], good[2]]
    fake = FakeExchange(feed, frames, interval_s=0.01)
    url = await fake.start()
    topics = Topics.with_prefix(settings.topic_prefix)
    try:
        await run_collector(settings, feed, url, fake.exhausted)
    finally:
        await fake.stop()
    received = await consume_until(settings, topics.liquidations, lambda v: len(v) >= 3)
    assert_same_events(expected_events(feed, good), received)
    dead = await consume_until(settings, topics.deadletter, lambda v: len(v) >= len(bad))
    assert len(dead) >= len(bad)
    reasons = {d["reason"] for d in dead}
    assert {"invalid_json", "oversized_frame"} <= reasons
    assert all(d["source"] == "binance-usdm" and d["payload"] for d in dead)
