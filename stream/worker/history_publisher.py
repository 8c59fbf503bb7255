"""Sends `liquidations.history` records for the worker's agent and timer (thin shell).

What is due and what a record holds is decided in stream.engine.history (pure). Here: the
sends, waiting for their acknowledgements, and the `closed_through` mark in a table of its
own, written (with the next batch) only after the records it covers were acknowledged: a
crash before the write publishes those buckets again, the same records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

import faust
import orjson
from faust.types import TableT
from prometheus_client import CollectorRegistry, Counter

from stream.engine.buckets import BucketValue
from stream.engine.history import HISTORY_MARK_KEY, HistoryClock, bucket_records

log = logging.getLogger(__name__)


class HistoryPublisher:
    def __init__(
        self,
        app: faust.App,
        topic: str,
        resolution_ms: int,
        registry: CollectorRegistry,
        table: TableT,
    ) -> None:
        self.app = app
        self.topic = topic
        self.resolution_ms = resolution_ms
        self.clock = HistoryClock(resolution_ms)
        self.table = table  # stream.worker.tables
        self.records = Counter(
            "liqstream_history_records",
            "History records published, by cause (closed, late)",
            ["cause"],
            registry=registry,
        )

    def recover(self, active: bool) -> None:
        """The mark as the table holds it; buckets after it are published at the next tick."""
        value = self.table.get(HISTORY_MARK_KEY) if active else None
        mark = orjson.loads(value) if isinstance(value, bytes | str) else value
        self.clock.load(mark if isinstance(mark, dict) else None)
        log.info("history published as closed through bucket %s", self.clock.closed_through)

    async def publish_changed(
        self, changed: Iterable[int], buckets: Mapping[int, BucketValue]
    ) -> None:
        """Buckets a batch changed after they had closed: their records again (late events).
        Call before the batch's bucket writes, inside the agent (Faust's RocksDB store takes
        writes only there, so the mark of the buckets the timer closed is written here too)."""
        reopened = self.clock.reopened(dict.fromkeys(changed))
        if reopened:
            await self._send(reopened, buckets, "late")
        mark = self.clock.unsaved_mark()
        if mark is not None:
            self.table[HISTORY_MARK_KEY] = orjson.dumps(mark)

    async def publish_closed(self, buckets: Mapping[int, BucketValue], now_ms: int) -> None:
        """Buckets the clock closed since the last call (before they can expire)."""
        due, through = self.clock.closing(buckets, now_ms)
        if due:
            await self._send(due, buckets, "closed")
        self.clock.closed(through)  # remembered with the next batch

    async def _send(
        self, chosen: list[int], buckets: Mapping[int, BucketValue], cause: str
    ) -> None:
        producer = self.app.producer
        futures = []
        for bucket in chosen:
            value = buckets.get(bucket)
            if value is None:
                continue
            for key, record in bucket_records(bucket, value, self.resolution_ms):
                futures.append(
                    await producer.send(
                        self.topic, key.encode(), orjson.dumps(record), None, None, None
                    )
                )
        for future in futures:
            await future  # acknowledged before anything that implies it is remembered
        self.records.labels(cause).inc(len(futures))
