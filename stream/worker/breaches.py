"""Breach records out of the worker, exactly once across restarts, crashes and rebalances.

The evaluator's states live in a changelogged table, but a crash can fall between a breach
record being acknowledged by Kafka and its state reaching the changelog. So the table also
keeps a fence: per partition of the breaches topic, the offset after the last record whose
state it holds. On recovery the records past the fence are read back and their states applied,
which makes "published" and "remembered" the same thing: a breach is never repeated, and one
that was not published is evaluated again from the (idempotent) totals.

Records are sent before the bucket and state writes of their batch, so any state that reached
the changelog implies its records were acknowledged first. A batch whose offset was not
committed is delivered again after a crash; each record carries the offset of the batch that
caused it (header `batch`), and records of such batches that were already published are not
published again when the batch is re-evaluated. The fence keeps a short history, so recovery
can start reading before the first record of the oldest batch that will be delivered again.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer
from faust.types import TableT
from prometheus_client import CollectorRegistry, Counter

from stream.config import Settings
from stream.engine.evaluator import RuleEvaluator, RuleState
from stream.engine.recovery import RecoveryPlan
from stream.engine.rules import Rule, RuleSet
from stream.errors import ConfigError
from stream.kafka import client_options
from stream.rules import load_rules

log = logging.getLogger(__name__)

FENCE_KEY = "\x00fence"  # not a possible "rule\x1fscope" key
FENCE_HISTORY = 256  # record-producing batches remembered (many more than between commits)


def fingerprint(rule: Rule) -> str:
    """A changed definition under the same name starts from a clean state."""
    return hashlib.sha1(repr(rule).encode()).hexdigest()[:16]


class BreachKeeper:
    """Rules file, evaluator states table and the breaches topic of one worker."""

    def __init__(
        self,
        app: faust.App,
        settings: Settings,
        evaluator: RuleEvaluator,
        topic: str,
        registry: CollectorRegistry,
        table: TableT,
    ) -> None:
        self.app = app
        self.settings = settings
        self.evaluator = evaluator
        self.topic = topic
        self.fence: dict[int, int] = {}
        # [(last batch offset whose records all precede `ends`, ends per partition)]
        self.history: list[tuple[int, dict[int, int]]] = []
        self.last_batch = -1
        self.history_unsaved = False
        self.redelivered_until = -1  # the last batch with records that will be evaluated again
        self.table = table  # stream.worker.tables
        self.published = Counter(
            "liqstream_breaches_published",
            "Breach and recovery records published",
            ["state"],
            registry=registry,
        )
        self.reloads = Counter(
            "liqstream_rules_reloads",
            "Rules file reloads, by outcome (ok, invalid)",
            ["outcome"],
            registry=registry,
        )
        self.rules_path: Path | None = settings.rules_file
        self.rules_mtime: float | None = None
        self.reload_requested = False

    # -- rules file ---------------------------------------------------------------------
    def load_initial_rules(self) -> RuleSet:
        """At start an invalid rules file is fatal (fail fast, naming the line)."""
        if self.rules_path is None:
            return RuleSet.empty()
        self.rules_mtime = self._mtime()
        return load_rules(self.rules_path, self.settings.windows_ms, self.settings.resolution_ms)

    def _mtime(self) -> float | None:
        assert self.rules_path is not None
        try:
            return self.rules_path.stat().st_mtime
        except OSError:
            return None

    def reload_if_changed(self, now_ms: int) -> bool:
        """On SIGHUP or a new mtime: swap rules; an invalid file keeps the old ones."""
        if self.rules_path is None:
            return False
        mtime = self._mtime()
        if not self.reload_requested and mtime == self.rules_mtime:
            return False
        self.reload_requested = False
        self.rules_mtime = mtime
        try:
            rules = load_rules(
                self.rules_path, self.settings.windows_ms, self.settings.resolution_ms
            )
        except ConfigError as exc:
            self.reloads.labels("invalid").inc()
            log.error("rules file not reloaded, keeping the previous rules: %s", exc)
            return False
        self.evaluator.set_rules(rules)
        self.evaluator.evaluate_all(now_ms)  # new rules may already be past their threshold
        self.reloads.labels("ok").inc()
        log.info("rules reloaded: %d rules from %s", len(rules.rules), self.rules_path)
        return True

    # -- recovery -----------------------------------------------------------------------
    def fence_history(self) -> list[tuple[int, dict[int, int]]]:
        """The fence history the table holds (oldest first), for the recovery plan."""
        value = self.table.get(FENCE_KEY)
        if value is None:
            return []
        data = orjson.loads(value) if isinstance(value, bytes | str) else value
        return [(batch, {int(p): o for p, o in ends.items()}) for batch, ends in data]

    async def recover(self, plan: RecoveryPlan, now_ms: int) -> None:
        """Rebuild evaluator states from the table, then from the records past the fence
        (stream.engine.recovery decides where to read from and what is a repeat)."""
        evaluator = self.evaluator
        evaluator.reset()
        self.fence, self.history = {}, []
        self.redelivered_until = -1
        if not plan.active:
            return
        current = {rule.name: fingerprint(rule) for rule in evaluator.rules}
        states: dict[tuple[str, str], RuleState] = {}
        for key, value in self.table.items():
            if value is None or key == FENCE_KEY:
                continue
            data = orjson.loads(value) if isinstance(value, bytes | str) else value
            name, scope_id = key.split("\x1f")
            if current.get(name) == data["r"]:
                states[(name, scope_id)] = RuleState(data["b"], data["t"])
        self.history = self.fence_history()
        self.fence = dict(plan.fence)
        records = await self._read_past(dict(plan.replay_from))
        replay = plan.replay(records)
        self.redelivered_until = replay.redelivered_until
        evaluator.restore(states, replay.apply, replay.suppress)
        evaluator.advance(now_ms)
        log.info(
            "rule states recovered: %d from the table, %d records read back from %s "
            "(batches from %s will be evaluated again)",
            len(states),
            len(records),
            plan.replay_from or "the beginning",
            plan.rules_from,
        )

    async def _read_past(self, start: dict[int, int]) -> list[tuple[int, int, dict[str, Any]]]:
        """(timestamp, batch, record) of the records from `start` to the end."""
        # Subscribed without a group: every partition is assigned, nothing is committed.
        consumer = AIOKafkaConsumer(
            self.topic, **client_options(self.settings), enable_auto_commit=False, group_id=None
        )
        await consumer.start()
        try:
            tps = sorted(consumer.assignment())
            if not tps:
                return []
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                if tp.partition in start:
                    consumer.seek(tp, start[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
            records: list[tuple[int, int, dict[str, Any]]] = []
            remaining = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
            while remaining:
                fetched = await consumer.getmany(*remaining, timeout_ms=1_000)
                for tp, messages in fetched.items():
                    for message in messages:
                        if message.offset < ends[tp]:
                            batch = int(dict(message.headers or ()).get("batch", b"-1"))
                            records.append((message.timestamp, batch, orjson.loads(message.value)))
                        self.fence[tp.partition] = max(
                            self.fence.get(tp.partition, 0), message.offset + 1
                        )
                remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
            return records
        finally:
            await consumer.stop()

    # -- publishing ---------------------------------------------------------------------
    async def publish(self, records: list[dict[str, Any]], batch: int | None = None) -> None:
        """Send and wait for the acks, then remember states and fence (in that order).

        `batch`: the offset of the batch whose evaluation produced `records`; None for records
        of time passing. Faust's RocksDB store takes writes only inside stream iteration, so
        those are remembered with the next batch (until then the fence replay covers them).
        """
        if batch is not None:
            self.last_batch = batch
            if batch >= self.redelivered_until:
                self.evaluator.stop_suppressing()
        if records:
            producer = self.app.producer
            headers = [("batch", str(-1 if batch is None else batch).encode())]
            futures = [
                await producer.send(
                    self.topic, record["rule"].encode(), orjson.dumps(record), None, None, headers
                )
                for record in records
            ]
            for record, future in zip(records, futures, strict=True):
                metadata = await future
                self.fence[metadata.partition] = max(
                    self.fence.get(metadata.partition, 0), metadata.offset + 1
                )
                self.published.labels(record["state"]).inc()
            self.history = [*self.history[-(FENCE_HISTORY - 1) :], (self.last_batch, self.fence)]
            self.fence = dict(self.fence)
            self.history_unsaved = True
        if batch is not None:
            self._save()

    def _save(self) -> None:
        evaluator = self.evaluator
        rules = evaluator.by_name
        for (name, scope_id), state in evaluator.take_changed():
            key = f"{name}\x1f{scope_id}"
            if state is None or name not in rules:
                self.table.pop(key, None)
                continue
            value = {"b": state.breached, "t": state.last_breach_ts, "r": fingerprint(rules[name])}
            self.table[key] = orjson.dumps(value)
        if self.history_unsaved:  # after the states: a fence never runs ahead of them
            self.table[FENCE_KEY] = orjson.dumps(
                [(b, {str(p): o for p, o in ends.items()}) for b, ends in self.history]
            )
            self.history_unsaved = False
