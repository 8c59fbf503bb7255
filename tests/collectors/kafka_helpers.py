"""Reading back what the collectors published, for end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import orjson
from aiokafka import AIOKafkaConsumer

from stream.config import Settings
from stream.kafka import client_options


async def consume_until(
    settings: Settings,
    topic: str,
    done: Callable[[list[dict]], bool],
    *,
    timeout_s: float = 60.0,
) -> list[dict]:
    """Decoded values of `topic` from the beginning until `done(values)` or the timeout."""
    consumer = AIOKafkaConsumer(topic, **client_options(settings), auto_offset_reset="earliest")
    await consumer.start()
    values: list[dict] = []
    try:
        async with asyncio.timeout(timeout_s):
            while not done(values):
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    values.extend(orjson.loads(record.value) for record in records)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return values


def count_at_least(n: int) -> Callable[[list[dict]], bool]:
    return lambda values: len(values) >= n
