"""The publisher buffers while Kafka is away, counts overflow, and loses nothing accepted."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from stream.collectors.metrics import CollectorMetrics
from stream.collectors.publisher import Publisher, backoff_s
from stream.config import load_settings
from stream.localkafka import LocalKafka, free_port
from stream.topics import ensure_topics
from tests.collectors.kafka_helpers import consume_until


def test_backoff_is_capped_and_jittered() -> None:
    delays = [backoff_s(attempt, base_s=0.5, cap_s=10.0) for attempt in range(40)]
    assert all(0 <= delay <= 10.0 for delay in delays)
    assert len(set(delays)) > 30  # jittered, not a fixed schedule


async def test_overflow_is_counted_never_silent() -> None:
    settings = load_settings(kafka_bootstrap=f"127.0.0.1:{free_port()}")  # nobody listens
    metrics = CollectorMetrics()
    publisher = Publisher(settings, metrics, capacity=10)
    accepted = [publisher.submit("t", "k", b"v") for _ in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert metrics.overflow.labels("t")._value.get() == 5
    assert publisher.pending == 10


@pytest.mark.kafka
async def test_records_survive_a_broker_outage(tmp_path: Path) -> None:
    port = free_port()
    broker = LocalKafka(tmp_path / "broker", port=port)
    await asyncio.to_thread(broker.start)
    try:
        settings = load_settings(kafka_bootstrap=broker.bootstrap, topic_prefix="outage.")
        await ensure_topics(settings)
        metrics = CollectorMetrics()
        publisher = Publisher(settings, metrics, request_timeout_ms=2_000)
        publisher.start()
        topic = "outage.liquidations"
        for n in range(100):
            publisher.submit(topic, "k", b'{"n": %d}' % n)
        async with asyncio.timeout(30):
            while publisher.pending:
                await asyncio.sleep(0.1)

        await asyncio.to_thread(broker.stop)
        for n in range(100, 200):
            publisher.submit(topic, "k", b'{"n": %d}' % n)
        async with asyncio.timeout(30):
            while not metrics.publish_errors._value.get():
                await asyncio.sleep(0.2)
        assert publisher.pending == 100  # held while the broker is down

        await asyncio.to_thread(broker.start)
        async with asyncio.timeout(90):
            while publisher.pending:
                await asyncio.sleep(0.2)
        await publisher.close()

        values = await consume_until(settings, topic, lambda v: len(v) >= 200, timeout_s=30)
        assert {value["n"] for value in values} == set(range(200))
    finally:
        await asyncio.to_thread(broker.stop)


@pytest.mark.kafka
async def test_a_record_kafka_refuses_for_good_does_not_block_the_rest(kafka_settings) -> None:
    await ensure_topics(kafka_settings)
    metrics = CollectorMetrics()
    publisher = Publisher(kafka_settings, metrics)
    publisher.start()
    topic = f"{kafka_settings.topic_prefix}liquidations.raw"
    publisher.submit(topic, "k", b'{"n": 1}')
    publisher.submit(topic, "k", b"x" * 2_000_000)  # above the 1 MiB request limit
    publisher.submit(topic, "k", b'{"n": 2}')
    await publisher.close(timeout_s=30)
    assert publisher.pending == 0
    assert metrics.undeliverable.labels(topic)._value.get() == 1
    values = await consume_until(kafka_settings, topic, lambda v: len(v) >= 2, timeout_s=20)
    assert [v["n"] for v in values] == [1, 2]
