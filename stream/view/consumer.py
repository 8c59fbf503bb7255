"""Feeds the global view from Kafka and tells live subscribers (SSE) what changed.

Subscribed without a consumer group, so every partition of the three topics is read by every
worker: totals from the beginning (compacted: the latest record per key), breaches and
collector status from 24 hours back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.view.state import DAY_MS, GlobalView

log = logging.getLogger(__name__)


class ViewFeeder:
    def __init__(self, settings: Settings, view: GlobalView) -> None:
        self.settings = settings
        self.view = view
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.subscribers: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self.caught_up = False  # read up to the end offsets seen at start

    def subscribe(self) -> asyncio.Queue[tuple[str, dict[str, Any]]]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=10_000)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> None:
        self.subscribers.discard(queue)

    def _notify(self, kind: str, record: dict[str, Any]) -> None:
        for queue in list(self.subscribers):
            try:
                queue.put_nowait((kind, record))
            except asyncio.QueueFull:  # a client that stopped reading: let it go
                self.subscribers.discard(queue)

    async def run(self, stop: asyncio.Event) -> None:
        topics = self.topics
        consumer = AIOKafkaConsumer(
            topics.totals,
            topics.breaches,
            topics.status,
            **client_options(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            await self._position(consumer)
            ends = await consumer.end_offsets(list(consumer.assignment()))
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
                for tp, records in batch.items():
                    for record in records:
                        self._apply(tp.topic, record.key, record.value)
                if not self.caught_up:
                    positions = {tp: await consumer.position(tp) for tp in ends}
                    self.caught_up = all(positions[tp] >= end for tp, end in ends.items())
        finally:
            await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        """Breaches and status from a day back; totals (compacted) from the beginning."""
        since = int(time.time() * 1000) - DAY_MS
        recent = [tp for tp in consumer.assignment() if tp.topic != self.topics.totals]
        if not recent:
            return
        found = await consumer.offsets_for_times({tp: since for tp in recent})
        ends = await consumer.end_offsets(recent)
        for tp in recent:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])

    def _apply(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        try:
            record = orjson.loads(value) if value is not None else None
        except orjson.JSONDecodeError:
            log.warning("not JSON on %s, skipped", topic)
            return
        if topic == self.topics.totals:
            if key is None:
                return
            self.view.add_totals(key.decode(), record)
            if record is not None:
                self._notify("totals", record)
        elif record is None:
            return
        elif topic == self.topics.breaches:
            self.view.add_breach(record)
            self._notify("breach", record)
        else:
            self.view.add_status(record)
            self._notify("status", record)
