"""Issue 11, item 3: the batches topic deleted and created again while the worker keeps its
data dir (and its changelog). The state's batch offsets belong to the old topic; new batches
must count, and a log line must say what happened."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.topics import KafkaTopicError, ensure_topics
from tests.worker.test_worker_kafka import (
    Totals,
    Worker,
    assert_exact,
    produce,
    recent_events,
    worker_settings,
)

pytestmark = pytest.mark.kafka


async def recreate(settings: Settings, topic: str) -> None:
    """Delete `topic`, wait until the cluster forgot it, and create the topics again."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        await admin.delete_topics([topic])
        async with asyncio.timeout(60):
            while topic in await admin.list_topics():
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    async with asyncio.timeout(60):
        while True:
            try:
                if topic in await ensure_topics(settings):
                    return
            except KafkaTopicError:  # refused while the deletion finishes
                pass
            await asyncio.sleep(0.5)


async def test_a_recreated_batches_topic_is_detected_and_counted(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    first = recent_events(1_500, seed=21)
    await produce(settings, first)
    worker = Worker(settings, tmp_path, "w").start()
    try:
        async with Totals(settings) as totals:
            assert_exact(await totals.wait_for_count(1_500), first)
            worker.stop(signal.SIGTERM)

            await recreate(settings, topics.batches)
            # The same ten minutes: these events fall in buckets the kept state holds.
            second = recent_events(1_500, seed=22)
            await produce(settings, second)
            worker.start()
            assert_exact(await totals.wait_for_count(3_000, timeout_s=120), first + second)
        assert f"{topics.batches} was recreated" in worker.log_path.read_text()
    finally:
        worker.stop(signal.SIGKILL)
