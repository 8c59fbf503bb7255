"""Poison records against a real broker: no record stops the worker or loses another's count.

The poison pill of issue 15 (an event of notional ~1e308, which passed validation and then
overflowed the micro-dollar sums, crashing the aggregation agent and losing the rest of its
batch) and its relatives, produced straight to `liquidations` (an older collector, another
producer) and straight into `liquidations.batches` (past stage one). Every valid event is
counted exactly, every poison record is dead-lettered with its reason, the worker stays ready.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.schema import LiquidationEvent
from stream.topics import ensure_topics
from stream.worker.batcher import batch_value
from tests.collectors.kafka_helpers import consume_until
from tests.worker.test_worker_kafka import (
    Totals,
    Worker,
    assert_exact,
    produce,
    recent_events,
    worker_settings,
)

pytestmark = pytest.mark.kafka

HUGE = 1.7976931348623157e308


def poisoned(event: LiquidationEvent, tag: str, **changes: object) -> bytes:
    """`event` as JSON with `changes`, never validated (as a foreign producer writes it)."""
    return orjson.dumps({**event.to_dict(), "id": f"poison-{tag}", **changes})


async def send_raw(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in records:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def assert_healthy(worker: Worker) -> None:
    base = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}"
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(base + path) as response:
                assert response.status == 200, (path, await response.text())


async def test_poison_records_are_dead_lettered_and_every_other_event_counts(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    valid = recent_events(3_000, seed=15)
    # Valid events that reach the batches topic directly, beside the poison: counted as well.
    direct = [dataclasses.replace(e, id=f"direct-{i}") for i, e in enumerate(valid[:40])]
    model = valid[0]
    overflow = {"notional_usd": HUGE, "quantity": HUGE / model.price}
    key = f"{model.exchange}:{model.symbol}".encode()
    into_liquidations = [
        poisoned(model, "overflow", **overflow),  # the BitMEX leavesQty of issue 15
        poisoned(model, "true-price", price=True),  # true is no number
        poisoned(model, "string-1e308", notional_usd="1e308"),
        poisoned(model, "inconsistent", notional_usd=model.notional_usd * 1000),
    ]
    raw_direct = [e.to_json() for e in direct]
    into_batches = [
        # the poison in the middle of a batch: the events after it count
        batch_value(
            0, [*raw_direct[:10], poisoned(model, "b-overflow", **overflow), *raw_direct[10:20]]
        ),
        batch_value(
            0, [*raw_direct[20:30], poisoned(model, "b-true", quantity=True), *raw_direct[30:]]
        ),
        b"{not json",
        b'{"p": 0, "events": 7}',
        batch_value(0, [b"[]", b'"text"', orjson.dumps({**model.to_dict(), "exchange": ["x"]})]),
    ]
    worker = Worker(settings, tmp_path, "w").start()
    try:
        async with Totals(settings) as totals:
            await produce(settings, valid[:1_000])
            await totals.wait_for_count(1_000)
            await send_raw(settings, topics.batches, [(b"*", value) for value in into_batches])
            await send_raw(settings, topics.liquidations, [(key, v) for v in into_liquidations])
            await produce(settings, valid[1_000:])
            latest = await totals.wait_for_count(len(valid) + len(direct))
            assert_exact(latest, valid + direct)
            await assert_healthy(worker)

        # read for a while: a record beyond the expected ones would show
        dead = await consume_until(settings, topics.deadletter, lambda v: len(v) > 11, timeout_s=10)
        reasons = sorted(d["reason"] for d in dead)
        assert reasons == sorted(
            [
                # stage one, from liquidations
                "notional_usd_implausible",
                "price_not_a_number",
                "notional_usd_implausible",
                "notional_usd_inconsistent",
                # stage two, from liquidations.batches
                "notional_usd_implausible",
                "quantity_not_a_number",
                "batch_invalid_json",
                "batch_malformed",
                "not_an_object",
                "not_an_object",
                "unknown_exchange",
            ]
        )
        from_batches = [d for d in dead if "offset" in d]
        assert len(from_batches) == 7  # each names the batch it came from
        assert {d["source"] for d in dead} == {"worker"}
        assert all("poison" in d["payload"] for d in dead if d["reason"].endswith("_a_number"))
        await assert_healthy(worker)
    finally:
        worker.stop(signal.SIGKILL)
