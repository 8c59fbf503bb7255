"""The view consumer against real Kafka: it waits for topics created after it started, reads
totals from the beginning but breaches and status only from a day back, knows when it has
caught up, and tells subscribers each change."""

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
from stream.kafka import Topics, client_options
from stream.topics import ensure_topics
from stream.view.consumer import ViewFeeder
from stream.view.state import DAY_MS, GlobalView
from tests.api.test_view import FEEDS, WINDOWS, key, largest, totals

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
        queue = early.subscribe()
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
            while not queue.empty():
                changes.append(queue.get_nowait())
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
