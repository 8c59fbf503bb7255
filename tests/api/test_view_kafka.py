"""The view consumer against real Kafka: it waits for topics created after it started, reads
totals and collector status from the beginning but breaches only from a day back, knows when
it has caught up, and tells subscribers each change."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.engine.history import history_record
from stream.engine.totals import Largest, ScopeSums
from stream.kafka import Topics, client_options
from stream.topics import ensure_topics
from stream.view.consumer import Subscriber, ViewFeeder
from stream.view.fanout import StreamFilter
from stream.view.state import DAY_MS, GlobalView
from tests.api.test_fanout import frames
from tests.api.test_view import FEEDS, WINDOWS, coverage_record, key, largest, totals

pytestmark = pytest.mark.kafka


@asynccontextmanager
async def feeding(settings: Settings) -> AsyncIterator[ViewFeeder]:
    feeder = ViewFeeder(settings, GlobalView(WINDOWS, FEEDS))
    task = asyncio.create_task(feeder.run(asyncio.Event()))
    try:
        yield feeder
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.cancelled(), task.exception()  # it did not die on its own


async def until(what: str, condition: Callable[[], bool], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


def told(feeder: ViewFeeder, subscriber: Subscriber) -> list[tuple[str, dict]]:
    """What the subscriber is due since its last call, as its stream would write it."""
    payload = feeder.fanout.since(subscriber.cursor, subscriber.wanted)
    assert payload is not None, "fell behind"
    subscriber.cursor = feeder.fanout.seq
    return frames(payload)


def breach(rule: str, ts: int) -> dict:
    return {
        "rule": rule,
        "state": "breach",
        "metric": "count",
        "window": "24h",
        "exchange": None,
        "coin": None,
        "value": 2,
        "threshold": 1,
        "ts": ts,
        "event_id": "e",
    }


async def test_waits_for_topics_reads_a_day_back_and_notifies(
    kafka_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stream.view.consumer")
    topics = Topics.with_prefix(kafka_settings.topic_prefix)
    now = int(time.time() * 1000)
    market = totals(None, None, "24h", 2, 500.0, largest(1, 400.0))
    okx = totals("okx", "BTC", "24h", 1, 100.0, largest(2, 100.0))
    connected = {"exchange": "okx", "feed": "okx", "state": "connected", "ts": now, "url": "u"}
    async with feeding(kafka_settings) as early:  # before the topics exist
        subscriber = early.subscribe(StreamFilter())
        await until("waiting logged", lambda: "waiting for topics" in caplog.text)
        assert not early.caught_up
        await ensure_topics(kafka_settings)
        producer = AIOKafkaProducer(**client_options(kafka_settings))
        await producer.start()
        try:
            old = now - 2 * DAY_MS
            await producer.send_and_wait(
                topics.breaches, orjson.dumps(breach("old", old)), key=b"old", timestamp_ms=old
            )
            await producer.send_and_wait(
                topics.breaches, orjson.dumps(breach("new", now)), key=b"new"
            )
            await producer.send_and_wait(topics.status, orjson.dumps(connected), key=b"okx")
            for record in (market, okx):
                await producer.send_and_wait(
                    topics.totals, orjson.dumps(record), key=key(record).encode()
                )
            await producer.send_and_wait(topics.totals, None, key=key(okx).encode())  # tombstone
        finally:
            await producer.stop()

        await until(
            "early caught up with the tombstone",
            lambda: early.caught_up and "okx:BTC:24h" not in early.view.totals,
        )
        expected = [
            ("totals", market),
            ("totals", okx),
            ("breach", breach("new", now)),
            ("status", connected),
        ]
        changes: list[tuple[str, dict]] = []

        def all_told() -> bool:
            changes.extend(told(early, subscriber))
            return all(change in changes for change in expected)

        await until("every change told to the subscriber", all_told)

        async with feeding(kafka_settings) as late:  # after: positioned a day back
            await until("late caught up", lambda: late.caught_up)
            assert [r["rule"] for r in late.view.breaches] == ["new"]
            for view in (early.view, late.view):
                assert view.query_totals({}, now)["totals"] == [market]
                assert [r["rule"] for r in view.query_breaches({}, now)["breaches"]] == ["new"]
                coverage = {v["feed"]: v for v in view.query_coverage({}, now)["venues"]}
                assert (coverage["okx"]["state"], coverage["okx"]["since"]) == ("connected", now)


async def test_coverage_records_from_the_collectors_topic(kafka_settings: Settings) -> None:
    """`coverage` status records as the collectors write them (key = exchange): the view keeps
    the latest per feed, a stray record on the topic is skipped, and a second view, reading
    the topic from its beginning, answers the same, also for a feed last heard of two days
    ago (a quiet feed's last word is still its state)."""
    topics = Topics.with_prefix(kafka_settings.topic_prefix)
    await ensure_topics(kafka_settings)
    now = int(time.time() * 1000)
    connected = {"exchange": "bybit", "feed": "bybit-linear", "state": "connected", "ts": now}
    first = coverage_record("bybit-linear", now + 1, 805, 9)  # the bundled symbols
    refreshed = coverage_record("bybit-linear", now + 2, 805, 803, "allLiquidation.AUSDT", "B")
    wildcard = coverage_record("binance-usdm", now + 3, 420, 420, wildcard=True)
    stray = {**refreshed, "ts": now + 4, "instruments_subscribed": "all"}
    old = now - 2 * DAY_MS
    quiet = [
        {"exchange": "bitmex", "feed": "bitmex", "state": "connected", "ts": old},
        coverage_record("bitmex", old + 1, 250, 250, wildcard=True),
    ]
    async with feeding(kafka_settings) as early:
        subscriber = early.subscribe(StreamFilter())
        producer = AIOKafkaProducer(**client_options(kafka_settings))
        await producer.start()
        try:
            for record in (*quiet, connected, first, refreshed, stray, wildcard):
                await producer.send_and_wait(
                    topics.status,
                    orjson.dumps(record),
                    key=record["exchange"].encode(),
                    timestamp_ms=record["ts"],
                )
        finally:
            await producer.stop()

        def binance_read() -> bool:
            venues = early.view.query_coverage({}, now)["venues"]
            return any(v["feed"] == "binance-usdm" and v["wildcard"] for v in venues)

        # the two exchanges' records are on partitions of their own: wait for both ends
        await until("every record read", lambda: binance_read() and early.unreadable == 1)
        await asyncio.sleep(2 * early.settings.stream_interval_ms / 1000)  # a tick or two
        changes = told(early, subscriber)
        assert ("status", refreshed) in changes and ("status", stray) not in changes

        async with feeding(kafka_settings) as late:
            await until("late caught up", lambda: late.caught_up)
            for view in (early.view, late.view):
                venues = {v["feed"]: v for v in view.query_coverage({}, now)["venues"]}
                bybit = venues["bybit-linear"]
                assert (bybit["state"], bybit["since"]) == ("connected", now)
                assert (bybit["instruments_subscribed"], bybit["instruments_listed"]) == (803, 805)
                assert bybit["rejected"] == refreshed["rejected"]
                assert bybit["coverage_as_of"] == now + 2
                binance = venues["binance-usdm"]
                assert (binance["instruments_subscribed"], binance["instruments_listed"]) == (
                    420,
                    420,
                )
                assert binance["wildcard"] is True and binance["lower_bound"] is True
                bitmex = venues["bitmex"]
                assert (bitmex["state"], bitmex["since"]) == ("connected", old)
                assert (bitmex["instruments_subscribed"], bitmex["coverage_as_of"]) == (
                    250,
                    old + 1,
                )


async def test_history_is_read_after_the_rest_and_only_where_it_is_served(
    kafka_settings: Settings,
) -> None:
    """The view is caught up (ready) from the small topics; the history topic is read after
    them, into /api/history's store; a feeder told to keep no history (a worker whose API
    `liqstream api` serves) never reads it."""
    topics = Topics.with_prefix(kafka_settings.topic_prefix)
    await ensure_topics(kafka_settings)
    minute = 60_000
    start = int(time.time() * 1000) // minute * minute - 10 * minute
    big = Largest(5.0, start, "x", "okx", "BTC-USDT-SWAP", "long", 100.0, 0.05)
    producer = AIOKafkaProducer(**client_options(kafka_settings))
    await producer.start()
    try:
        for n in range(3):
            entry = ScopeSums(n + 1, 0, 1, 0, big)
            record = history_record(None, "BTC", start + n * minute, minute, entry)
            await producer.send_and_wait(
                topics.history, orjson.dumps(record), key=f"*:BTC:{start + n * minute}".encode()
            )
        market = totals(None, None, "24h", 1, 5.0, largest(1, 5.0))
        await producer.send_and_wait(topics.totals, orjson.dumps(market), key=key(market).encode())
    finally:
        await producer.stop()
    async with feeding(kafka_settings) as full:
        await until("history read", lambda: full.history_caught_up)
        assert full.caught_up and full.view.totals
        assert len(full.history.fine[(None, "BTC")]) == 3
    without = ViewFeeder(kafka_settings, GlobalView(WINDOWS, FEEDS), history=False)
    task = asyncio.create_task(without.run(asyncio.Event()))
    try:
        await until("caught up without history", lambda: without.caught_up and without.view.totals)
        await asyncio.sleep(1)  # a few more polls: still nothing of the history topic
        assert without.history.fine == {} and without.history.version == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
