"""Faust wiring of the worker: the batches agent, the bucket table, the totals timer.

Thin on purpose: all arithmetic is in `stream.engine` (pure).

Crash safety without Faust's windowed tables or exactly-once mode (faust-streaming issues
#385, #412, #517, #323):
- state is a plain changelogged table keyed by time bucket; each value carries the offset of
  the last batch applied to it, so a batch redelivered after a crash is applied only to the
  buckets that had not persisted it (Faust flushes the changelog before committing offsets);
- expiry is ours: buckets that left the longest window are deleted (tombstoned) by the timer;
- the in-memory engine is rebuilt from the table after every recovery.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any

import faust
import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP
from prometheus_client import CollectorRegistry, Counter

from stream.config import Settings
from stream.engine.aggregation import Aggregation, batch_events
from stream.engine.buckets import BucketValue, decode_bucket, encode_bucket
from stream.engine.evaluator import RuleEvaluator
from stream.engine.recovery import plan_recovery
from stream.engine.rules import RuleSet
from stream.errors import Rejected
from stream.kafka import client_options
from stream.worker.breaches import BreachKeeper
from stream.worker.deadletter import dead_letter
from stream.worker.health import Health
from stream.worker.history_publisher import HistoryPublisher
from stream.worker.liquidation_metrics import LiquidationCounters, applied_events
from stream.worker.memory import freeze_long_lived
from stream.worker.streams import declare_topics
from stream.worker.tables import declare_tables

log = logging.getLogger(__name__)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class WorkerAgents:
    """Registers topics, the table, the agent and timers on `app`."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        declared = declare_topics(app, settings.topic_prefix)
        topics = self.topics = declared.names
        self.batches_topic = declared.batches
        self.totals_topic = declared.totals
        self.deadletter_topic = declared.deadletter
        tables = declare_tables(app)
        self.table = tables.buckets
        self.aggregation = Aggregation(settings.windows_ms, settings.resolution_ms)
        self.evaluator = RuleEvaluator(RuleSet.empty(), self.aggregation)
        self.recovered = False
        self.registry = CollectorRegistry()
        self.events_applied = Counter(
            "liqstream_worker_events", "Events added to the rolling totals", registry=self.registry
        )
        self.rejects = Counter(
            "liqstream_worker_rejects",
            "Events refused by the aggregation (too_late, from_future)",
            ["reason"],
            registry=self.registry,
        )
        self.breaches = BreachKeeper(
            app, settings, self.evaluator, topics.breaches, self.registry, tables.rule_states
        )
        self.history = HistoryPublisher(
            app, topics.history, settings.resolution_ms, self.registry, tables.history
        )
        self.liquidations = LiquidationCounters()  # Grafana's series: applied events, once
        self.registry.register(self.liquidations)
        self.evaluator.set_rules(self.breaches.load_initial_rules())
        self.active = False
        self.catch_up_until: int | None = None  # batches before it are delivered again
        self.evaluation = asyncio.Lock()
        self.rewrite: list[int] = []  # buckets to write to the changelog again (_rebuild_state)
        self.table.on_recover(self._rebuild)
        app.on_partitions_revoked.connect(self._on_revoked)
        self.health = Health(self.registry)
        app.agent(self.batches_topic, name="aggregate")(self._aggregate)
        app.task(self._reload_on_sighup)
        app.timer(settings.totals_min_interval_ms / 1000, name="publish-totals")(self._tick)

    def _owns_batches(self) -> bool:
        return TP(self.topics.batches, 0) in self.app.assignor.assigned_actives()

    def _on_revoked(self, sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        """No more totals or breaches from this worker until a recovery says it owns the
        batches again: the new owner publishes from here on."""
        (revoked,) = args
        if TP(self.topics.batches, 0) in revoked:
            self.active = False

    async def _rebuild(self) -> None:
        try:
            await self._rebuild_state()
        except Exception as exc:
            # Faust runs this in a task of its own whose failure nobody would see: stop the
            # worker instead of serving stale totals.
            log.exception("recovery of the worker state failed")
            await self.app.crash(exc)

    async def _rebuild_state(self) -> None:
        """Carry out the recovery plan (stream.engine.recovery decides; here: the I/O)."""
        self.active = self._owns_batches()
        self.recovered = True
        buckets = self._table_buckets()
        now = now_ms()
        committed, end = await self._batches_offsets() if self.active else (0, 0)
        plan = plan_recovery(
            active=self.active,
            bucket_offsets={bucket: value.offset for bucket, value in buckets.items()},
            committed=committed,
            end=end,
            fence_history=self.breaches.fence_history() if self.active else [],
        )
        if plan.seek_to_start:
            # Nothing committed yet (a crash within the first commit interval). Seen here:
            # after a changelog recovery Faust then left the batches partition where the
            # recovery had parked it, and the agent got no records; start it at the beginning.
            await self.app.consumer.seek(TP(self.topics.batches, 0), 0)
        if plan.forget_offsets:
            log.warning(
                "%s was recreated: the state applied batches up to offset %d, the topic ends "
                "at %d; rebuilding the state's batch offsets (totals kept)",
                self.topics.batches,
                plan.rules_from - 1,
                end,
            )
            for value in buckets.values():
                value.offset = -1
        self.aggregation.load(buckets if self.active else {}, now)
        self.rewrite = list(plan.rewrite)
        await self.breaches.recover(plan, now)
        self.history.recover(self.active)
        # Time may have moved rules past their thresholds while no worker ran: look at every
        # rule once the batches already waiting have been applied (the totals lag until then).
        self.catch_up_until = plan.catch_up_until
        if plan.evaluate_at_once:
            self.evaluator.evaluate_all(now)
            await self.breaches.publish(self.evaluator.drain())
        freeze_long_lived()  # the rebuilt state is long-lived: keep the collector off it
        log.info(
            "aggregation %s with %d buckets",
            "active" if self.active else "standby",
            len(buckets),
        )

    def _table_buckets(self) -> dict[int, BucketValue]:
        """The bucket values the table holds (tombstones not compacted away yet skipped)."""
        buckets = {}
        for key, value in self.table.items():
            if value is not None:
                buckets[int(key)] = decode_bucket(value)
        return buckets

    async def _batches_offsets(self) -> tuple[int, int]:
        """(committed, end) of the batches topic: this app's group resumes from `committed`
        (0: nothing committed yet, the group starts at the earliest batch), so the batches
        from there to `end` are (or are delivered again) before new ones.

        The end through Faust's own consumer, the committed offset from the group coordinator
        through an admin client: nothing joins or consumes on the worker's loop meanwhile."""
        tp = TP(self.topics.batches, 0)
        (end,) = (await self.app.consumer.highwaters(tp)).values()
        admin = AIOKafkaAdminClient(**client_options(self.settings))
        await admin.start()
        try:
            partition = TopicPartition(self.topics.batches, 0)
            found = await admin.list_consumer_group_offsets(
                self.app.conf.id, partitions=[partition]
            )
        finally:
            await admin.close()
        committed = found.get(partition)
        return (committed.offset if committed is not None and committed.offset > 0 else 0), end

    async def _dead_letter(self, reason: str, payload: str, **context: Any) -> None:
        self.rejects.labels(reason).inc()
        log.warning("dead-lettered from %s: %s", self.topics.batches, reason)
        value = dead_letter(reason, payload, now_ms(), **context)
        await self.deadletter_topic.send(key=b"worker", value=value)

    async def _aggregate(self, stream: faust.StreamT[bytes]) -> None:
        """The agent: unhealthy from a crash until Faust's supervisor has started it again."""
        await self.health.watch("aggregate", self._aggregate_batches(stream))

    async def _aggregate_batches(self, stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            offset = event.message.offset
            try:
                events, bad = batch_events(event.value)
            except Rejected as exc:  # not a batch at all: nothing of it can be counted
                text = (event.value or b"").decode(errors="replace")
                await self._dead_letter(exc.reason, text, offset=offset, detail=exc.detail)
                continue
            for item, rejected in bad:  # the rest of the batch counts
                text = orjson.dumps(item).decode()
                await self._dead_letter(rejected.reason, text, offset=offset)
            # One evaluation at a time (the timer evaluates too): records are published in
            # the order the states they imply were reached.
            async with self.evaluation:
                for bucket in self.rewrite:  # table writes need the agent's context
                    if bucket in self.aggregation.buckets:
                        self.table[str(bucket)] = encode_bucket(self.aggregation.buckets[bucket])
                self.rewrite = []
                now = now_ms()
                evaluator = self.evaluator
                # Batches delivered again after a crash: the totals lag behind the states
                # already published, so only per-event rules run until they are applied.
                catching_up = self.catch_up_until is not None and offset < self.catch_up_until
                evaluator.advance(now, evaluate=not catching_up)
                after_each = evaluator.after_event_single if catching_up else evaluator.after_event
                try:
                    changed, rejects = self.aggregation.apply_batch(
                        events, offset, now, after_each if evaluator.rules else None
                    )
                except Exception as exc:  # supervision boundary: logged, counted, dead-lettered
                    # Validated events never get here; should a bug do, the batch counts not
                    # at all (the state is what the table holds) and the agent goes on.
                    log.exception("batch at offset %d could not be applied", offset)
                    self._restore(now)
                    evaluator.drain()  # what it saw of the batch does not count either
                    text = (event.value or b"").decode(errors="replace")
                    reason = f"batch_failed_{type(exc).__name__}"
                    await self._dead_letter(reason, text, offset=offset, detail=repr(exc))
                    continue
                self.events_applied.inc(len(events) - len(rejects))
                resolution_ms = self.aggregation.resolution_ms
                self.liquidations.count(applied_events(events, changed, rejects, resolution_ms))
                if self.catch_up_until is not None and offset + 1 >= self.catch_up_until:
                    self.catch_up_until = None
                    evaluator.evaluate_all(now)  # what changed while no worker ran
                # breaches first: a bucket that reached the changelog implies its records did
                await self.breaches.publish(evaluator.drain(), offset)
                await self.history.publish_changed(changed, self.aggregation.buckets)
                for bucket, value in changed.items():
                    self.table[str(bucket)] = encode_bucket(value)
            for raw_event, reason in rejects:
                self.rejects.labels(reason).inc()
                record = {
                    "source": "worker",
                    "reason": reason,
                    "payload": raw_event,
                    "ts": now_ms(),
                }
                await self.deadletter_topic.send(key=b"worker", value=orjson.dumps(record))

    def _restore(self, now: int) -> None:
        """The aggregation as the table holds it: before the batch being applied."""
        self.aggregation.load(self._table_buckets(), now)

    async def _reload_on_sighup(self) -> None:
        def request() -> None:
            self.breaches.reload_requested = True  # the next tick reloads

        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, request)

    async def _tick(self) -> None:
        if not self.active:
            return
        async with self.evaluation:
            now = now_ms()
            if (
                self.catch_up_until is None
            ):  # new rules are evaluated at once: not on lagging totals
                self.breaches.reload_if_changed(now)
            self.evaluator.advance(now, evaluate=self.catch_up_until is None)
            await self.breaches.publish(self.evaluator.drain())
            # closed buckets before they can expire below; under the lock, so a batch sees
            # a bucket either still open or already published as closed
            await self.history.publish_closed(self.aggregation.buckets, now)
        self.liquidations.rank(self.aggregation.sums, self.aggregation.longest_window, now)
        for bucket in self.aggregation.expire(now):
            self.table.pop(str(bucket), None)
        # The producer directly: Faust's Topic.send costs far more per record, and a tick can
        # carry hundreds of keys.
        producer = self.app.producer
        topic = self.topics.totals
        for key, record in self.aggregation.publish(now):
            await producer.send(topic, key.encode(), orjson.dumps(record), None, None, None)
