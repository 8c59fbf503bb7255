"""The live collector under faults: a poison frame never stops a connection, a crashed feed is
restarted, `connected` means frames flow, replayed events are not published twice after a
restart."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from itertools import islice
from pathlib import Path

import orjson
import pytest

from stream.collectors.binance import FEEDS as BINANCE
from stream.collectors.bitfinex import FEEDS as BITFINEX
from stream.collectors.connection import FeedConnection
from stream.collectors.dedup import RecentIds
from stream.collectors.dydx import FEEDS as DYDX
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.service import CollectorService
from stream.collectors.venue import Instruments, Parsed
from stream.config import Settings
from stream.fake_exchange import FakeExchange, Script, Timed, generated_frames
from stream.kafka import Topics
from stream.topics import ensure_topics
from tests.collectors.kafka_helpers import consume_until
from tests.collectors.test_shells import TOPICS, RecordingPublisher, pipeline_for
from tests.collectors.venue_helpers import fixture

USDM = BINANCE[0]
POISON = '{"poison": true}'


def crashing_parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """The real parser, except that one frame raises as a parser bug would."""
    if text == POISON:
        raise RuntimeError("a bug in the parser")
    return USDM.parse(text, instruments, received_ts)


async def until(condition, what: str, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)
    assert condition(), what


async def test_a_poison_frame_is_dead_lettered_and_the_connection_reads_on() -> None:
    feed = dataclasses.replace(USDM, parse=crashing_parse)
    good = list(islice(generated_frames(USDM, seed=4), 3))
    fake = FakeExchange(feed, [good[0], POISON, good[1], good[2]], interval_s=0.01)
    pipeline, publisher = pipeline_for(feed)
    connection = FeedConnection(pipeline, await fake.start())
    task = asyncio.create_task(connection.run())
    try:
        await until(lambda: len(publisher.values(TOPICS.liquidations)) == 3, "every good frame")
    finally:
        connection.stop.set()
        await task
        await fake.stop()
    assert fake.connections == 1 and connection.connections == 1  # never reconnected
    (dead,) = publisher.values(TOPICS.deadletter)
    assert (dead["source"], dead["reason"]) == ("binance-usdm", "internal_error")
    payload = orjson.loads(dead["payload"])
    assert payload == {"error": "RuntimeError: a bug in the parser", "frame": POISON}
    assert pipeline.metrics.internal_errors.labels(feed.name)._value.get() == 1


async def test_connected_only_while_frames_flow() -> None:
    (frame,) = islice(generated_frames(USDM, seed=2), 1)
    fake = FakeExchange(USDM, [Timed(time.monotonic() + 3.0, frame)], interval_s=0.01)
    pipeline, publisher = pipeline_for(USDM)
    gauge = pipeline.metrics.connected.labels(USDM.name)
    connection = FeedConnection(pipeline, await fake.start())
    task = asyncio.create_task(connection.run())
    try:
        await until(lambda: publisher.values(TOPICS.status), "the connected record")
        assert publisher.values(TOPICS.status)[0]["state"] == "connected"
        assert gauge._value.get() == 0  # open, but no frame yet
        await until(lambda: publisher.values(TOPICS.liquidations), "the frame")
        assert gauge._value.get() == 1
        coverage = [s for s in publisher.values(TOPICS.status) if s["state"] == "coverage"]
        assert coverage[0]["wildcard"] is True
        assert coverage[0]["instruments_subscribed"] == coverage[0]["instruments_listed"]
    finally:
        connection.stop.set()
        await task
        await fake.stop()
    assert gauge._value.get() == 0


async def test_replayed_events_are_not_published_again_after_a_restart(tmp_path: Path) -> None:
    feed = DYDX[0]
    memory = tmp_path / "recent_ids" / "dydx.json"
    replay = fixture("dydx", "subscribed_replay.json")  # the `subscribed` answer's replay

    async def one_run() -> tuple[list[dict], FeedPipeline]:
        publisher = RecordingPublisher()
        book = InstrumentBook(feed, url="")
        pipeline = FeedPipeline(
            feed,
            book,
            publisher,  # type: ignore[arg-type]
            TOPICS,
            CollectorMetrics(),
            recent_ids=RecentIds(path=memory),
        )
        await pipeline.on_frame(replay, 1_762_290_000_000)
        pipeline.recent_ids.save()
        return publisher.values(TOPICS.liquidations), pipeline

    first, _ = await one_run()
    assert len(first) == 1 and memory.is_file()
    second, pipeline = await one_run()  # a new process: only the file remembers
    assert second == []
    assert pipeline.metrics.duplicates.labels("dydx")._value.get() == 1


def test_the_id_memory_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "ids.json"
    recent = RecentIds(capacity=100, path=path, persisted=10)
    for n in range(50):
        recent.add(f"id{n}")
    recent.save()
    assert orjson.loads(path.read_text()) == [f"id{n}" for n in range(40, 50)]
    assert not RecentIds(path=path).add("id49") and RecentIds(path=path).add("id39")
    path.write_text("{not json")
    assert len(RecentIds(path=path)) == 0  # unreadable: ignored with a warning


@pytest.mark.kafka
async def test_a_crashed_feed_is_restarted(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    frames = list(islice(generated_frames(USDM, seed=8), 5))
    fake = FakeExchange(USDM, frames, interval_s=0.01)
    url = await fake.start()
    service = CollectorService(settings, [USDM], urls={USDM.name: url}, refresh_instruments=False)
    (connection,) = service.connections
    real_run = connection.run
    calls = []

    async def crash_once() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the feed's task failed")
        await real_run()

    connection.run = crash_once  # type: ignore[method-assign]
    task = asyncio.create_task(service.run())
    topics = Topics.with_prefix(settings.topic_prefix)
    try:
        events = await consume_until(settings, topics.liquidations, lambda v: len(v) >= 5)
        assert len(events) == 5  # the restarted feed delivers
    finally:
        service.stop.set()
        await task
        await fake.stop()
    assert len(calls) == 2
    assert service.metrics.internal_errors.labels(USDM.name)._value.get() == 1
    dead = await consume_until(settings, topics.deadletter, lambda v: len(v) >= 1, timeout_s=10)
    assert dead[0]["reason"] == "internal_error"
    assert "the feed's task failed" in dead[0]["payload"]


@pytest.mark.kafka
async def test_dydx_replay_after_a_collector_restart_is_not_published_twice(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    feed = DYDX[0]
    frames = list(islice(generated_frames(feed, seed=6), 6))
    fake = FakeExchange(feed, frames, interval_s=0.01, script=Script(replay_on_subscribe=4))
    url = await fake.start()
    topics = Topics.with_prefix(settings.topic_prefix)

    def collector() -> CollectorService:
        return CollectorService(settings, [feed], urls={feed.name: url}, refresh_instruments=False)

    try:
        first = collector()
        task = asyncio.create_task(first.run())
        await until(lambda: first.metrics.events.labels("dydx")._value.get() == 6, "6 events")
        first.stop.set()
        await task
        second = collector()  # a new process would read the same data dir
        task = asyncio.create_task(second.run())
        await until(
            lambda: second.metrics.duplicates.labels("dydx")._value.get() == 4, "the replay seen"
        )
        second.stop.set()
        await task
    finally:
        await fake.stop()
    assert second.metrics.events.labels("dydx")._value.get() == 0
    # Read on past the 6th record for a while: a 7th would be a replayed event published again.
    events = await consume_until(settings, topics.liquidations, lambda v: len(v) > 6, timeout_s=3)
    assert len(events) == 6


@pytest.mark.kafka
async def test_rows_held_by_a_stateful_parser_are_settled_when_the_collector_stops(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Bitfinex holds an execution row up to 10 s for its trigger; a stop settles it."""
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    (feed,) = BITFINEX
    held = fixture("bitfinex", "live_match_first.json")  # an execution row, no trigger yet
    fake = FakeExchange(feed, [held], interval_s=0.01)
    url = await fake.start()
    service = CollectorService(settings, [feed], urls={feed.name: url}, refresh_instruments=False)
    topics = Topics.with_prefix(settings.topic_prefix)
    task = asyncio.create_task(service.run())
    try:
        pairing = service.connections[0].pipeline.parse
        await until(lambda: bool(pairing.state.held), "the execution row held")  # type: ignore[union-attr]
        assert service.metrics.events.labels(feed.name)._value.get() == 0
    finally:
        service.stop.set()
        await task
        await fake.stop()
    events = await consume_until(settings, topics.liquidations, lambda v: len(v) >= 1)
    # Position 143679087: -4.56671421 ETH executed at 235.52, counted alone (no trigger seen):
    # a short, USD = 4.56671421 x 235.52 = 1075.5525307392.
    (event,) = events
    assert (event["id"], event["side"], event["symbol"]) == ("143679087", "short", "tETHF0:USTF0")
    assert event["quantity"] == pytest.approx(4.56671421, rel=1e-12)
    assert event["price"] == pytest.approx(235.52, rel=1e-12)
    assert event["notional_usd"] == pytest.approx(1075.5525307392, rel=1e-12)
