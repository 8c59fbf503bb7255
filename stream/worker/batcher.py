"""Stage one of the worker: `liquidations` -> `liquidations.batches`, validated and de-duplicated.

Why a separate stage: a Faust agent pays a fixed cost per Kafka record (its consumer thread
hands records over one at a time), which caps it at a few thousand records per second, while a
raw aiokafka `getmany` loop reads hundreds of thousands. So this stage reads `liquidations` with
aiokafka and forwards frame-sized batches (one record carrying up to `batch_events` events) to
an internal topic; the Faust agent then pays its per-record cost once per batch.
`liquidations` itself stays one event per record for every other consumer.

Exactness:
- Transactions: the batches of an input partition, its dead letters and its input offsets are
  committed in one Kafka transaction, by a producer whose `transactional_id` belongs to that
  partition (`<group>-<topic>-<partition>`). The owner a rebalance gives the partition to
  starts a producer under the same id first, which aborts the old owner's open transaction and
  fences it: a batcher evicted while its event loop stood still (a stall past the session
  timeout, SIGSTOP) can no longer forward the batch it holds once it runs again, while the new
  owner forwards the same events. Stage two and the rebuild below read `read_committed`, so
  aborted batches count nowhere. (aiokafka has no KIP-447 group-aware fencing: hence one
  producer per input partition.)
- De-duplication by event id is rebuilt from the batches topic itself: on (re)assignment the
  ids of every event already forwarded within the longest window are read back, so an event a
  collector published twice is never forwarded twice. Duplicates of one event share a key
  (`exchange:symbol`), hence an input partition, hence this stage's owner. Each batch record
  carries its events' (exchange, id, ts) in an `ids` header, a seventh of the record's bytes,
  which the rebuild decodes instead of every event (a record without it, written before it
  existed, is read whole).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import ProducerFenced
from aiokafka.structs import ConsumerRecord

from stream.config import Settings
from stream.engine.dedup import SeenIds
from stream.errors import Rejected
from stream.kafka import Topics, client_options
from stream.schema import decode_canonical, event_from_json
from stream.worker.deadletter import dead_letter
from stream.worker.memory import freeze_long_lived

log = logging.getLogger(__name__)

FUTURE_MARGIN_MS = 5 * 60_000
# A batch record must stay under the broker's default message.max.bytes (1 MiB), whatever the
# events look like, or Kafka refuses it and no later batch can pass: batches are cut by bytes
# as well as by count, and an event no venue could produce is dead-lettered instead.
MAX_BATCH_BYTES = 512 * 1024
MAX_EVENT_BYTES = 16 * 1024


def batch_value(source_partition: int, raw_events: Iterable[bytes]) -> bytes:
    """The batch record: raw event JSON passed through without re-encoding."""
    return b'{"p":%d,"events":[%s]}' % (source_partition, b",".join(raw_events))


IDS_HEADER = "ids"
Ids = list[tuple[str, str, int]]


def ids_header(ids: Ids) -> bytes:
    """The `ids` header of a batch record: [[exchange, id, ts], ...] of its events, in order."""
    return orjson.dumps(ids)


def record_ids(value: bytes | None, headers: Iterable[tuple[str, bytes]]) -> Ids:
    """(exchange, id, ts) of each event of a batch record: from its `ids` header, or from the
    events themselves (a record without the header, or with one that is not a list of ids)."""
    for name, header in headers:
        if name == IDS_HEADER:
            try:
                items = orjson.loads(header)
            except orjson.JSONDecodeError:
                break
            if isinstance(items, list):
                ids = [
                    (item[0], item[1], item[2])
                    for item in items
                    if type(item) is list
                    and len(item) == 3
                    and type(item[0]) is str
                    and type(item[1]) is str
                    and type(item[2]) is int
                ]
                if len(ids) == len(items):
                    return ids
            break
    return forwarded_ids(value)


def forwarded_ids(value: bytes | None) -> Ids:
    """(exchange, id, ts) of each event of a batch record; nothing of a record that is no
    batch, nor of an event without them (the second stage dead-letters those)."""
    try:
        batch = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return []
    events = batch.get("events") if isinstance(batch, dict) else None
    if not isinstance(events, list):
        return []
    return [
        (event["exchange"], event["id"], event["ts"])
        for event in events
        if isinstance(event, dict)
        and isinstance(event.get("exchange"), str)
        and isinstance(event.get("id"), str)
        and type(event.get("ts")) is int
    ]


class Batcher(ConsumerRebalanceListener):
    def __init__(
        self,
        settings: Settings,
        *,
        group_id: str,
        batch_events: int = 2_000,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self.settings = settings
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.group_id = group_id
        self.batch_events = batch_events
        self.max_batch_bytes = max_batch_bytes
        longest_ms = max(settings.windows_ms.values())
        self.horizon_ms = longest_ms + settings.resolution_ms + FUTURE_MARGIN_MS
        self.seen = SeenIds(settings.resolution_ms, self.horizon_ms)
        self.consumer: AIOKafkaConsumer | None = None
        self.producers: dict[int, AIOKafkaProducer] = {}  # by input partition
        self.forwarded = 0
        self.duplicates = 0
        self.rejected = 0
        self.fenced = 0  # transactions refused because a newer owner took the partition
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_partition_fetch_bytes=4 << 20,
        )
        self.consumer.subscribe([self.topics.liquidations], listener=self)
        await self.consumer.start()

    async def stop(self) -> None:
        """The producers first: a transaction a stop cut short is aborted (or ends) before the
        group hears we left, and the next owner reads those records again."""
        for partition in list(self.producers):
            await self.producers.pop(partition).stop()
        if self.consumer is not None:
            await self.consumer.stop()

    def transactional_id(self, partition: int) -> str:
        return f"{self.group_id}-{self.topics.liquidations}-{partition}"

    async def _own(self, partitions: set[int]) -> None:
        """One transactional producer per owned input partition. Starting one fences the
        partition's previous owner and aborts its open transaction, so it comes before the
        rebuild of forwarded ids: every batch that will ever commit is then in the topic."""
        for partition in set(self.producers) - partitions:
            await self.producers.pop(partition).stop()
        for partition in sorted(partitions - set(self.producers)):
            producer = AIOKafkaProducer(
                **client_options(self.settings),
                acks="all",
                enable_idempotence=True,
                transactional_id=self.transactional_id(partition),
                linger_ms=2,
                max_batch_size=1 << 20,
                max_request_size=8 << 20,
            )
            await producer.start()
            self.producers[partition] = producer

    # ConsumerRebalanceListener: the lock makes a revocation wait for the batch in flight, so
    # the next owner starts exactly where this one committed.
    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        async with self._lock:
            pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # aiokafka may hand out records of the new assignment while this callback still runs;
        # the lock keeps them waiting until the memory of forwarded ids is complete.
        async with self._lock:
            await self._own({tp.partition for tp in assigned})
            await self.rebuild_seen()
        # The ids live for a day: keep the collector from walking them (after the rebuild
        # returned, so the reader it used is garbage collected, not frozen).
        freeze_long_lived()

    async def _batch_partitions(self) -> list[TopicPartition]:
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            (described,) = await admin.describe_topics([self.topics.batches])
        finally:
            await admin.close()
        return [
            TopicPartition(self.topics.batches, p["partition"]) for p in described["partitions"]
        ]

    async def rebuild_seen(self) -> None:
        """Read back the ids of every event forwarded within the horizon."""
        self.seen = SeenIds(self.settings.resolution_ms, self.horizon_ms)
        reader = AIOKafkaConsumer(
            **client_options(self.settings),
            enable_auto_commit=False,
            isolation_level="read_committed",
        )
        await reader.start()
        try:
            tps = await self._batch_partitions()
            reader.assign(tps)
            since_ms = int(time.time() * 1000) - self.horizon_ms
            starts = await reader.offsets_for_times({tp: since_ms for tp in tps})
            ends = await reader.end_offsets(tps)
            for tp in tps:
                start = starts.get(tp)
                reader.seek(tp, start.offset if start is not None else ends[tp])
            remaining = {tp for tp in tps if (await reader.position(tp)) < ends[tp]}
            while remaining:
                batch = await reader.getmany(*remaining, timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        for exchange, event_id, ts in record_ids(record.value, record.headers):
                            self.seen.add(exchange, event_id, ts)
                    if records and records[-1].offset + 1 >= ends[tp]:
                        remaining.discard(tp)
                for tp in list(remaining):
                    if await reader.position(tp) >= ends[tp]:
                        remaining.discard(tp)
        finally:
            await reader.stop()
        log.info("batcher remembers %d forwarded event ids", len(self.seen))

    async def run(self, stop: asyncio.Event) -> None:
        assert self.consumer is not None
        while not stop.is_set():
            records = await self.consumer.getmany(timeout_ms=200, max_records=20_000)
            if not records:
                continue
            async with self._lock:
                # Records fetched before a rebalance may belong to partitions revoked since:
                # the new owner reads them from the committed offset, so drop them here.
                owned = self.consumer.assignment()
                records = {tp: rs for tp, rs in records.items() if tp in owned}
                if records:
                    await self._forward(records)

    async def _forward(self, records: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        now_ms = int(time.time() * 1000)
        self.seen.expire(now_ms)
        for tp, partition_records in records.items():
            producer = self.producers.get(tp.partition)
            if producer is None:  # fenced: the group gives the partition to its new owner
                continue
            try:
                async with producer.transaction():
                    forwarded = await self._forward_partition(
                        producer, tp, partition_records, now_ms
                    )
            except ProducerFenced:
                # Our event loop stood still past the session timeout and the partition's new
                # owner forwards these records: this transaction is aborted, nothing counts.
                # The ids remembered for it go with the rebuild at our next assignment.
                self.fenced += 1
                log.warning(
                    "batcher fenced on %s by the partition's new owner: %d records dropped "
                    "here (the new owner forwards them)",
                    tp,
                    len(partition_records),
                )
                del self.producers[tp.partition]
                await producer.stop()
                continue
            self.forwarded += forwarded

    async def _forward_partition(
        self,
        producer: AIOKafkaProducer,
        tp: TopicPartition,
        partition_records: list[ConsumerRecord],
        now_ms: int,
    ) -> int:
        """Send one partition's batches, dead letters and next offset in the open transaction;
        the number of events forwarded."""
        sends = []
        dead: list[bytes] = []
        raws: list[bytes] = []
        ids: Ids = []
        size = forwarded = 0
        for record in partition_records:
            accepted = self._accept(record, now_ms, dead)
            if accepted is None:
                continue
            raw, event_ids = accepted
            # the event and its entry in the ids header (quotes, commas, brackets, the ts)
            length = len(raw) + len(event_ids[0]) + len(event_ids[1]) + 30
            if raws and (len(raws) >= self.batch_events or size + length > self.max_batch_bytes):
                sends.append(await self._send_batch(producer, tp.partition, raws, ids))
                forwarded += len(raws)
                raws, ids, size = [], [], 0
            raws.append(raw)
            ids.append(event_ids)
            size += length
        if raws:
            sends.append(await self._send_batch(producer, tp.partition, raws, ids))
            forwarded += len(raws)
        for value in dead:
            sends.append(await producer.send(self.topics.deadletter, value, key=b"worker"))
        await asyncio.gather(*sends)  # raises if Kafka did not acknowledge: the commit aborts
        offsets = {tp: partition_records[-1].offset + 1}
        await producer.send_offsets_to_transaction(offsets, self.group_id)
        return forwarded

    def _reject(self, value: bytes, reason: str, now_ms: int, dead: list[bytes]) -> None:
        self.rejected += 1
        log.warning("rejected record from liquidations: %s", reason, extra={"reason": reason})
        dead.append(dead_letter(reason, value.decode(errors="replace"), now_ms))

    async def _send_batch(
        self, producer: AIOKafkaProducer, partition: int, raws: list[bytes], ids: Ids
    ) -> asyncio.Future[object]:
        value = batch_value(partition, raws)
        headers = [(IDS_HEADER, ids_header(ids))]
        return await producer.send(self.topics.batches, value, key=b"*", headers=headers)

    def _accept(
        self, record: ConsumerRecord, now_ms: int, dead: list[bytes]
    ) -> tuple[bytes, tuple[str, str, int]] | None:
        """The event's bytes to forward (raw when canonical) and its (exchange, id, ts), or
        None (duplicate, rejected)."""
        value = record.value or b""
        if len(value) > MAX_EVENT_BYTES:
            self._reject(value, "oversized_event", now_ms, dead)
            return None
        event = decode_canonical(value)
        if event is None:
            try:  # valid but not canonical (numbers as strings, ...): forward the normal form
                event = event_from_json(value)
            except Rejected as exc:
                self._reject(value, exc.reason, now_ms, dead)
                return None
            value = event.to_json()
        if not self.seen.add(event.exchange, event.id, event.ts):
            self.duplicates += 1
            return None
        return value, (event.exchange, event.id, event.ts)
