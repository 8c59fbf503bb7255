"""Delivery to Kafka that survives a broker outage without blocking the websocket readers.

Records go into a bounded buffer first; one task drains it through an idempotent
(`acks=all`) aiokafka producer and keeps a batch in the buffer until Kafka has acknowledged
it. While Kafka is unreachable the buffer fills, retries back off, and what does not fit is
counted as overflow, never dropped silently. A record re-sent after an ambiguous failure is
removed downstream by its event id.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from stream.collectors.metrics import CollectorMetrics
from stream.config import Settings
from stream.kafka import client_options

log = logging.getLogger(__name__)


class OutgoingRecord(NamedTuple):
    topic: str
    key: bytes
    value: bytes


def backoff_s(attempt: int, *, base_s: float = 0.25, cap_s: float = 30.0) -> float:
    """Capped exponential backoff with full jitter (attempt 0 -> up to base_s)."""
    return random.uniform(0, min(cap_s, base_s * 2**attempt))


class Publisher:
    def __init__(
        self,
        settings: Settings,
        metrics: CollectorMetrics,
        *,
        capacity: int = 100_000,
        batch_size: int = 1_000,
        request_timeout_ms: int = 15_000,
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.capacity = capacity
        self.batch_size = batch_size
        self.request_timeout_ms = request_timeout_ms
        self._buffer: deque[OutgoingRecord] = deque()
        self._wakeup = asyncio.Event()
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.delivered = 0

    def submit(self, topic: str, key: str, value: bytes) -> bool:
        """Queue a record; False (and counted) when the buffer is full."""
        if len(self._buffer) >= self.capacity:
            self.metrics.overflow.labels(topic).inc()
            log.error("publish buffer full, record dropped", extra={"topic": topic})
            return False
        self._buffer.append(OutgoingRecord(topic, key.encode(), value))
        self.metrics.buffered.set(len(self._buffer))
        self._wakeup.set()
        return True

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def start(self) -> None:
        self._task = asyncio.create_task(self._drain(), name="publisher")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Deliver what is buffered (up to timeout_s), then stop the producer."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
            except TimeoutError:
                log.error("closing with %d records undelivered", len(self._buffer))
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def _connect(self) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(
            **client_options(self.settings),
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=self.request_timeout_ms,
            retry_backoff_ms=250,
        )
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    async def _drain(self) -> None:
        attempt = 0
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            try:
                if self._producer is None:
                    self._producer = await self._connect()
                await self._send_batch(self._producer)
                attempt = 0
            except (KafkaError, OSError, TimeoutError) as exc:
                self.metrics.publish_errors.inc()
                delay_s = backoff_s(attempt)
                attempt += 1
                log.warning(
                    "Kafka delivery failed (%r); %d records buffered, retrying in %.1fs",
                    exc,
                    len(self._buffer),
                    delay_s,
                )
                if self._producer is not None and attempt % 5 == 0:
                    await self._producer.stop()  # start over with fresh connections
                    self._producer = None
                await asyncio.sleep(delay_s)

    async def _wait_delivered(self, futures: list[asyncio.Future[object]]) -> list[object]:
        """Wait for acknowledgements; while Kafka is unreachable aiokafka keeps retrying, so
        report each stalled interval instead of sending the batch a second time."""
        gathered = asyncio.gather(*futures, return_exceptions=True)
        while True:
            try:
                return await asyncio.wait_for(
                    asyncio.shield(gathered), self.request_timeout_ms / 1000
                )
            except TimeoutError:
                self.metrics.publish_errors.inc()
                log.warning("Kafka is not acknowledging; %d records buffered", len(self._buffer))

    async def _send_batch(self, producer: AIOKafkaProducer) -> None:
        batch = [self._buffer[i] for i in range(min(self.batch_size, len(self._buffer)))]
        futures: list[asyncio.Future[object]] = []
        try:
            for record in batch:
                try:
                    futures.append(await producer.send(record.topic, record.value, key=record.key))
                except KafkaError as exc:
                    if exc.retriable:
                        raise
                    # Never deliverable (e.g. larger than the broker accepts): retrying would
                    # block every record behind it, so it is counted and logged, not kept.
                    self.metrics.undeliverable.labels(record.topic).inc()
                    log.error(
                        "record for %s can never be delivered (%r); dropped", record.topic, exc
                    )
                    futures.append(_done_future())
        finally:
            results = await self._wait_delivered(futures)
        delivered = 0
        for result in results:
            if isinstance(result, BaseException):
                break
            delivered += 1
        for _ in range(delivered):  # acknowledged records leave the buffer, in order
            self._buffer.popleft()
        self.delivered += delivered
        self.metrics.buffered.set(len(self._buffer))
        if delivered < len(batch):
            failure = next((r for r in results if isinstance(r, BaseException)), None)
            raise failure if isinstance(failure, KafkaError) else KafkaError(repr(failure))


def _done_future() -> asyncio.Future[object]:
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future
