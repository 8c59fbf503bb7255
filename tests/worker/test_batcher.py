"""Stage one of the worker against real Kafka: validated, de-duplicated batches, also after a
restart (the memory of forwarded ids is rebuilt from the batches topic)."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from bench.synthetic import synthetic_events
from stream.config import Settings
from stream.engine.dedup import SeenIds
from stream.kafka import Topics, client_options
from stream.topics import ensure_topics
from stream.worker.batcher import (
    IDS_HEADER,
    Batcher,
    batch_value,
    forwarded_ids,
    ids_header,
    record_ids,
)
from tests.collectors.kafka_helpers import consume_until


def test_seen_ids_forget_with_the_window() -> None:
    seen = SeenIds(resolution_ms=60_000, horizon_ms=600_000)
    assert seen.add("okx", "a", 1_000_000_000_000)
    assert seen.add("bybit", "a", 1_000_000_000_000)  # ids are per venue
    assert not seen.add("okx", "a", 1_000_000_000_000)
    assert seen.add("okx", "b", 1_000_000_060_000)
    seen.expire(1_000_000_000_000 + 600_000 + 60_000)
    assert len(seen) == 1  # "a"'s bucket left the horizon, "b"'s did not
    assert seen.add("okx", "a", 1_000_000_000_000)


def test_seen_ids_find_a_repeat_in_another_bucket() -> None:
    """A venue stamping events with their receive time (BitMEX) replays an order after a
    reconnect with a later ts: the id is known whatever bucket the repeat falls in, and it is
    forgotten with the bucket of its first sighting."""
    seen = SeenIds(resolution_ms=60_000, horizon_ms=600_000)
    first_ms = 1_000_000_000_000
    assert seen.add("bitmex", "order-1", first_ms)
    assert not seen.add("bitmex", "order-1", first_ms + 60_000)  # a minute later: same order
    assert not seen.add("bitmex", "order-1", first_ms - 120_000)
    assert seen.add("okx", "order-1", first_ms + 60_000)
    seen.expire(first_ms + 600_000 + 60_000)  # the first sighting's bucket left the horizon
    assert len(seen) == 1
    assert seen.add("bitmex", "order-1", first_ms + 60_000)


def test_batch_value_passes_raw_events_through() -> None:
    value = batch_value(2, [b'{"id":"x"}', b'{"id":"y"}'])
    assert orjson.loads(value) == {"p": 2, "events": [{"id": "x"}, {"id": "y"}]}


async def produce(settings: Settings, topic: str, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


BATCH_BYTES = 1_500  # about five events: batches are cut by size as well as by count


async def run_batcher_until(settings: Settings, group: str, forwarded: int) -> Batcher:
    batcher = Batcher(settings, group_id=group, batch_events=7, max_batch_bytes=BATCH_BYTES)
    await batcher.start()
    stop = asyncio.Event()
    task = asyncio.create_task(batcher.run(stop))
    try:
        async with asyncio.timeout(60):
            while batcher.forwarded + batcher.duplicates + batcher.rejected < forwarded:
                await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await task
        await batcher.stop()
    return batcher


@pytest.mark.kafka
async def test_batches_are_unique_valid_and_survive_a_restart(kafka_settings: Settings) -> None:
    await ensure_topics(kafka_settings)
    topics = Topics.with_prefix(kafka_settings.topic_prefix)
    now_ms = int(time.time() * 1000)
    events = list(synthetic_events(39, start_ms=now_ms - 600_000, span_ms=600_000, seed=3))
    # Ids are the venue's own: the same id on another venue is another event.
    twin_exchange = "kraken" if events[0].exchange != "kraken" else "dydx"
    events.append(dataclasses.replace(events[0], exchange=twin_exchange))
    records = [(f"{e.exchange}:{e.symbol}".encode(), e.to_json()) for e in events]
    duplicates = records[:10]
    huge = events[1].to_json().replace(b'"id":"', b'"id":"' + b"x" * 20_000)
    bad = [(b"x:y", b"{not json"), (b"x:y", b'{"id": "only-an-id"}'), (b"x:y", huge)]
    await produce(kafka_settings, topics.liquidations, records + duplicates + bad)

    group = f"{kafka_settings.topic_prefix}batcher"
    first = await run_batcher_until(kafka_settings, group, len(records) + len(duplicates) + 3)
    assert (first.forwarded, first.duplicates, first.rejected) == (40, 10, 3)

    # A restarted batcher (same group) sees the same events produced again: all duplicates.
    await produce(kafka_settings, topics.liquidations, records[20:])
    second = await run_batcher_until(kafka_settings, group, 20)
    assert (second.forwarded, second.duplicates) == (0, 20)

    batches = await consume_until(kafka_settings, topics.batches, lambda v: False, timeout_s=5)
    forwarded = [event for batch in batches for event in batch["events"]]
    assert sorted(e["id"] for e in forwarded) == sorted(e.id for e in events)
    sizes = [sum(len(orjson.dumps(e)) + 1 for e in batch["events"]) for batch in batches]
    assert max(sizes) <= BATCH_BYTES
    assert max(len(batch["events"]) for batch in batches) < 7  # the size cut them first
    key = lambda e: (e["exchange"], e["id"])  # noqa: E731
    assert {key(e): e for e in forwarded} == {key(e.to_dict()): e.to_dict() for e in events}

    dead = await consume_until(kafka_settings, topics.deadletter, lambda v: len(v) >= 3)
    assert sorted(d["reason"] for d in dead) == ["field_missing", "invalid_json", "oversized_event"]
    (oversized,) = [d for d in dead if d["reason"] == "oversized_event"]
    assert oversized["truncated_from"] == len(huge) and len(oversized["payload"]) == 4_096


def test_forwarded_ids_skip_what_is_no_batch() -> None:
    """The memory of forwarded ids is rebuilt from whatever the batches topic holds: a record
    someone else wrote there never stops the rebuild (the second stage dead-letters it)."""
    good = {"exchange": "okx", "id": "a", "ts": 1_762_290_000_000}
    assert forwarded_ids(batch_value(0, [orjson.dumps(good)])) == [("okx", "a", 1_762_290_000_000)]
    for value in (None, b"", b"{not json", b"[]", b'{"events": 7}', b'{"events": [1, {}]}'):
        assert forwarded_ids(value) == []
    odd = [{**good, "exchange": ["x"]}, {**good, "ts": 1.5e12}, {**good, "ts": True}, good]
    assert forwarded_ids(orjson.dumps({"events": odd})) == [("okx", "a", 1_762_290_000_000)]


def test_ids_come_from_the_header_and_from_the_events_without_one() -> None:
    """The rebuild reads a batch's `ids` header (a seventh of its bytes) instead of its
    events; a batch written before the header existed, or with a header that is no list of
    ids, is read whole."""
    good = {"exchange": "okx", "id": "a", "ts": 1_762_290_000_000}
    value = batch_value(0, [orjson.dumps(good)])
    ids = [("okx", "a", 1_762_290_000_000)]
    assert record_ids(value, [(IDS_HEADER, ids_header(ids))]) == ids
    assert record_ids(b"{not json", [("x", b"1"), (IDS_HEADER, ids_header(ids))]) == ids
    assert record_ids(value, []) == ids  # an old record
    for header in (b"{not json", b"7", b'[["okx", "a"]]', b'[["okx", "a", 1.5], ["okx", "b", 1]]'):
        assert record_ids(value, [(IDS_HEADER, header)]) == ids


@pytest.mark.kafka
async def test_a_replay_with_a_later_ts_is_dropped_after_a_restart(
    kafka_settings: Settings,
) -> None:
    """Issue 11, item 2: a collector killed with -9 forgets the ids it published; restarted,
    BitMEX replays its partial and the same orders arrive stamped a minute later (receive
    time). The batcher, restarted too, knows them from the batches topic whatever their ts."""
    await ensure_topics(kafka_settings)
    topics = Topics.with_prefix(kafka_settings.topic_prefix)
    now_ms = int(time.time() * 1000)
    events = [
        dataclasses.replace(e, exchange="bitmex")
        for e in synthetic_events(12, start_ms=now_ms - 300_000, span_ms=200_000, seed=11)
    ]
    key = lambda e: f"{e.exchange}:{e.symbol}".encode()  # noqa: E731
    await produce(kafka_settings, topics.liquidations, [(key(e), e.to_json()) for e in events])
    group = f"{kafka_settings.topic_prefix}batcher"
    first = await run_batcher_until(kafka_settings, group, len(events))
    assert (first.forwarded, first.duplicates) == (12, 0)

    replayed = [dataclasses.replace(e, ts=e.ts + 61_000, received_ts=e.ts + 61_000) for e in events]
    await produce(kafka_settings, topics.liquidations, [(key(e), e.to_json()) for e in replayed])
    second = await run_batcher_until(kafka_settings, group, len(replayed))
    assert (second.forwarded, second.duplicates) == (0, 12)
    batches = await consume_until(kafka_settings, topics.batches, lambda v: False, timeout_s=3)
    assert sorted(e["ts"] for b in batches for e in b["events"]) == sorted(e.ts for e in events)
