"""Against the real broker: topics are created idempotently and events survive a round trip."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.schema import event_from_json, make_event
from stream.topics import ensure_topics

pytestmark = pytest.mark.kafka


def sample_events(count: int) -> list:
    return [
        make_event(
            exchange=("binance", "okx", "bybit")[n % 3],
            symbol="BTCUSDT",
            coin="BTC",
            quote="USDT",
            contract_type="linear",
            side=("long", "short")[n % 2],
            price=100_000.5 + n,
            quantity=0.001 * (n + 1),
            notional_usd=(100_000.5 + n) * 0.001 * (n + 1),
            ts=1_762_290_000_000 + n,
            received_ts=1_762_290_000_100 + n,
        )
        for n in range(count)
    ]


async def test_topics_created_once_with_compacted_totals(kafka_settings: Settings) -> None:
    topics = Topics.with_prefix(kafka_settings.topic_prefix)
    assert sorted(await ensure_topics(kafka_settings)) == sorted(topics.all())
    assert await ensure_topics(kafka_settings) == []

    admin = AIOKafkaAdminClient(**client_options(kafka_settings))
    await admin.start()
    try:
        described = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topics.totals)]
        )
        entries = {entry[0]: entry[1] for entry in described[0].resources[0][4]}
        assert entries["cleanup.policy"] == "compact"
        partitions = await admin.describe_topics([topics.liquidations])
        assert len(partitions[0]["partitions"]) == kafka_settings.topic_partitions
    finally:
        await admin.close()


async def test_events_round_trip_intact(kafka_settings: Settings) -> None:
    await ensure_topics(kafka_settings)
    topic = Topics.with_prefix(kafka_settings.topic_prefix).liquidations
    events = sample_events(50)

    producer = AIOKafkaProducer(
        **client_options(kafka_settings), acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        for event in events:
            await producer.send(
                topic, event.to_json(), key=f"{event.exchange}:{event.symbol}".encode()
            )
        await producer.flush()
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic, **client_options(kafka_settings), auto_offset_reset="earliest"
    )
    await consumer.start()
    received = []
    try:
        async with asyncio.timeout(30):
            while len(received) < len(events):
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    received.extend(records)
    finally:
        await consumer.stop()

    by_id = {event.id: event for event in events}
    assert len(received) == len(events)
    for record in received:
        event = event_from_json(record.value)
        assert event == by_id[event.id]
        assert record.key == f"{event.exchange}:{event.symbol}".encode()
        assert orjson.loads(record.value) == event.to_dict()
