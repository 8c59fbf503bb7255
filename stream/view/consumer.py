"""Feeds the global view from Kafka and tells live subscribers (SSE) what changed, once per
tick (stream.view.fanout).

Every partition of the four topics is assigned to every worker (no consumer group): totals
and history from the beginning (compacted: the latest record per key; history also expires
by time), collector status from the beginning too (what a feed reported last, its connection
and coverage, may be days old on a quiet feed; the topic's retention bounds it), breaches
from 24 hours back. Topics that do not exist yet
are waited for, never created here: a consumer's metadata request could auto-create them with
broker defaults (an uncompacted totals topic).

At start the history topic is read only once the other three are caught up: it holds a
record per scope and bucket (millions for a busy day), the others a few thousand. So the
view is ready (totals, breaches, coverage) within seconds and /api/history says it is still
loading until the history topic is read to its end too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import stamina
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.view.fanout import Fanout, StreamFilter
from stream.view.history import HistoryStore
from stream.view.state import DAY_MS, GlobalView

log = logging.getLogger(__name__)

TOPIC_POLL_MAX_S = 5.0  # while waiting for the topics to be created
PING_S = 15.0  # a comment line to stream clients, so that proxies keep idle streams open


class Subscriber:
    """One /api/stream client: its filter, the seq of its last write, its wake-up call (set at
    every tick that published something, and every PING_S), whether a ping is due, since when
    its current write has been waiting (None: not writing) and how to cut it off."""

    __slots__ = ("abort", "cursor", "ping", "wake", "wanted", "writing_since")

    def __init__(self, wanted: StreamFilter, cursor: int) -> None:
        self.wanted = wanted
        self.cursor = cursor
        self.wake = asyncio.Event()
        self.ping = False
        self.writing_since: float | None = None
        self.abort: Callable[[], None] | None = None


async def wait_for_partitions(settings: Settings, topics: list[str]) -> list[TopicPartition]:
    """All partitions of `topics`, once every one of them exists and has a leader.

    Waits as long as it takes (polling at most every 5 s): a worker may start before
    `liqstream topics` has run, and /readyz reports not ready meanwhile."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        delay_s = 0.2
        while True:
            missing = sorted(set(topics) - set(await admin.list_topics()))
            if not missing:
                described = await admin.describe_topics(topics)
                missing = sorted(
                    topic["topic"]
                    for topic in described
                    if topic["error_code"] != 0
                    or not topic["partitions"]
                    or any(p["error_code"] != 0 or p["leader"] < 0 for p in topic["partitions"])
                )
            if not missing:
                return [
                    TopicPartition(topic["topic"], partition["partition"])
                    for topic in described
                    for partition in topic["partitions"]
                ]
            log.info("waiting for topics %s to be created (with leaders)", ", ".join(missing))
            await asyncio.sleep(delay_s)
            delay_s = min(2 * delay_s, TOPIC_POLL_MAX_S)
    finally:
        await admin.close()


async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Every partition of `ends` read up to its end offset there."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


class ViewFeeder:
    def __init__(self, settings: Settings, view: GlobalView, *, history: bool = True) -> None:
        """`history` False: the history topic is not read (a worker whose API is served by
        `liqstream api` needs none of it, and it is the bulk of the view's memory)."""
        self.settings = settings
        self.keeps_history = history
        self.view = view
        self.topics = Topics.with_prefix(settings.topic_prefix)
        self.fanout = Fanout(settings.stream_max_lag_ms / 1000)
        self.history = HistoryStore(
            settings.resolution_ms,
            settings.history_fine_horizon_ms,
            settings.history_retention_ms,
        )
        self.subscribers: set[Subscriber] = set()
        self.caught_up = False  # totals, breaches, status read up to the ends seen at start
        self.unreadable = 0  # records skipped as not what the view expects
        self.dropped = 0  # stream clients ended for falling behind
        self._pinged_at = time.monotonic()
        self.closing = False  # set when the process stops: every stream ends
        self._told: dict[TopicPartition, int] = {}  # offsets up to which changes were told

    @property
    def history_caught_up(self) -> bool:
        """The history topic was read up to the end offsets seen at start (/api/history
        answers from then on)."""
        return self.history.settled

    def subscribe(self, wanted: StreamFilter) -> Subscriber:
        """A client that is sent what changes from the next tick on."""
        subscriber = Subscriber(wanted, self.fanout.seq)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def tick(self) -> None:
        """Publishes the changes since the last tick and wakes every client: each takes what
        it is due when it is ready, so none waits for another. Every PING_S each is woken
        for a ping; one whose write has waited LIQSTREAM_STREAM_MAX_LAG (a client that
        stopped reading) is cut off. One timer for all: none per client and write."""
        now = time.monotonic()
        if not self.subscribers:  # nothing to encode for (a worker whose API is off)
            self.fanout.forget_pending()
        published = self.fanout.tick(now)
        ping = now - self._pinged_at >= PING_S
        if ping:
            self._pinged_at = now
        stalled_before = now - self.fanout.max_lag_s
        for subscriber in list(self.subscribers):
            since = subscriber.writing_since
            if since is not None and since < stalled_before and subscriber.abort is not None:
                self.dropped += 1
                self.subscribers.discard(subscriber)
                subscriber.abort()  # its write fails: its handler ends
            elif published or ping:
                subscriber.ping = subscriber.ping or ping
                subscriber.wake.set()

    def close_streams(self) -> None:
        """Ends every stream (the process stops): each handler wakes, sees it and returns."""
        self.closing = True
        for subscriber in self.subscribers:
            subscriber.wake.set()

    async def _ticks(self, stop: asyncio.Event) -> None:
        interval_s = self.settings.stream_interval_ms / 1000
        while not stop.is_set():
            await asyncio.sleep(interval_s)
            self.tick()
            self.history.maintain(int(time.time() * 1000))  # folds once an hour

    async def run(self, stop: asyncio.Event) -> None:
        """Feeds the view until `stop`. After a Kafka error it reads the topics again with a
        new consumer (capped, jittered backoff, for as long as the worker runs: the API has
        no other source); the view takes records it already holds without change."""
        ticks = asyncio.create_task(self._ticks(stop), name="view-ticks")
        try:
            async for attempt in stamina.retry_context(
                on=KafkaError, attempts=None, timeout=None, wait_initial=0.5, wait_max=30.0
            ):
                with attempt:
                    await self._feed(stop)
        finally:
            ticks.cancel()
            await asyncio.gather(ticks, return_exceptions=True)
            self.close_streams()

    async def _feed(self, stop: asyncio.Event) -> None:
        topics = self.topics
        wanted = [topics.totals, topics.breaches, topics.status]
        if self.keeps_history:
            wanted.append(topics.history)
        partitions = await wait_for_partitions(self.settings, wanted)
        consumer = AIOKafkaConsumer(
            **client_options(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            consumer.assign(partitions)
            await self._position(consumer, partitions)
            ends = await consumer.end_offsets(partitions)
            history = {tp: end for tp, end in ends.items() if tp.topic == topics.history}
            rest = {tp: end for tp, end in ends.items() if tp not in history}
            if not self.caught_up:
                consumer.pause(*history)  # the small topics first: ready sooner
            while not stop.is_set():
                if not self.caught_up:
                    self.caught_up = await _reached(consumer, rest)
                    if self.caught_up:
                        consumer.resume(*history)
                # every version of a history key read: folding is safe from here
                if (
                    self.caught_up
                    and not self.history.settled
                    and await _reached(consumer, history)
                ):
                    self.history.settle(int(time.time() * 1000))
                batch = await consumer.getmany(timeout_ms=500, max_records=5_000)
                for tp, records in batch.items():
                    told = self._told.get(tp, 0)
                    for record in records:
                        # read again after a reconnect: into the view, but not told again
                        self._apply(tp.topic, record.key, record.value, record.offset >= told)
                    self._told[tp] = max(told, records[-1].offset + 1)
        finally:
            await consumer.stop()

    async def _position(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        """Breaches from a day back; totals (compacted) and status from the beginning."""
        since_ms = int(time.time() * 1000) - DAY_MS
        recent = [tp for tp in partitions if tp.topic == self.topics.breaches]
        # The ends first: where no record of the last day is found, start at an end taken
        # before the search, so a record written meanwhile is still read.
        ends = await consumer.end_offsets(recent)
        found = await consumer.offsets_for_times({tp: since_ms for tp in recent})
        for tp in recent:
            hit = found.get(tp)
            consumer.seek(tp, hit.offset if hit is not None else ends[tp])
        await consumer.seek_to_beginning(
            *[tp for tp in partitions if tp.topic != self.topics.breaches]
        )

    def _apply(self, topic: str, key: bytes | None, value: bytes | None, tell: bool = True) -> None:
        """One record into the view; one the view cannot read is logged and skipped, so a
        stray producer on these topics never stops the API."""
        try:
            record = orjson.loads(value) if value is not None else None
            if record is not None and not isinstance(record, dict):
                raise TypeError(f"a JSON {type(record).__name__}, not an object")
            self._take(topic, key, record, tell)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self.unreadable += 1
            log.warning(
                "unreadable record on %s, skipped (%r): %r", topic, exc, (value or b"")[:200]
            )

    def _take(
        self, topic: str, key: bytes | None, record: dict[str, Any] | None, tell: bool
    ) -> None:
        if topic == self.topics.history:
            if record is None:  # tombstones are not ours: the topic expires by time
                return
            self.history.add(record, int(time.time() * 1000))
            # what was read before the topic's end (the past, loading) is told to nobody
            if tell and key is not None and self.history.settled:
                self.fanout.offer("history", record, key.decode())
        elif topic == self.topics.totals:
            if key is None:
                return
            totals_key = key.decode()
            self.view.add_totals(totals_key, record)
            if record is not None and tell:
                self.fanout.offer("totals", record, totals_key)
        elif record is None:
            return
        elif topic == self.topics.breaches:
            if self.view.add_breach(record) and tell:
                self.fanout.offer("breach", record)
        else:
            self.view.add_status(record)
            if tell:
                self.fanout.offer("status", record)
