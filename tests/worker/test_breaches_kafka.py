"""Breach records from the live worker against real Kafka: exactly once through kill -9,
crossings while the worker is down, and rules reloaded without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from stream.config import Settings
from stream.topics import ensure_topics
from tests.worker.test_worker_kafka import (
    TopicReader,
    Totals,
    Worker,
    produce,
    recent_events,
    worker_settings,
)

pytestmark = pytest.mark.kafka

WHALE_USD = 150_000
RULES = f"""
rules:
  - name: market-count
    metric: count
    window: 24h
    above: 1500
  - name: down-crossing
    metric: count
    window: 24h
    above: 3500
  - name: whale
    metric: single_usd
    above: {WHALE_USD}
"""


class Breaches(TopicReader):
    """Every record of the breaches topic."""

    topic_of = staticmethod(lambda topics: topics.breaches)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.records: list[dict] = []

    def handle(self, key: bytes | None, value: dict) -> None:
        self.records.append(value)

    def of(self, rule: str) -> list[dict]:
        return [r for r in self.records if r["rule"] == rule]

    async def wait_for(self, rule: str, timeout_s: float = 120) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if found := self.of(rule):
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"no record of rule {rule!r}; seen {self.records[-5:]}")


async def wait_active(worker: Worker, timeout_s: float = 120) -> None:
    """Until the worker has recovered its state and owns the aggregation."""
    url = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}/readyz"
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200 and (await response.json()).get("active"):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("the worker never became active")


async def test_breaches_exactly_once_through_crashes_and_downtime(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    worker = Worker(settings, tmp_path, "w")
    worker.env["LIQSTREAM_RULES_FILE"] = str(rules_file)
    first, second = recent_events(2_000, seed=11), recent_events(2_000, seed=12)
    try:
        async with Totals(settings) as totals, Breaches(settings) as breaches:
            worker.start()
            await produce(settings, first)
            await breaches.wait_for("market-count")
            worker.stop(signal.SIGKILL)  # right after the breach, mid-stream
            worker.start()
            await wait_active(worker)
            await totals.wait_for_count(2_000)

            worker.stop(signal.SIGKILL)
            await produce(settings, second)  # crosses down-crossing while nobody runs
            worker.start()
            await wait_active(worker)
            crossing = await breaches.wait_for("down-crossing")
            await totals.wait_for_count(4_000)
            await asyncio.sleep(2)  # room for any repeat to show up

            assert [r["state"] for r in breaches.of("market-count")] == ["breach"]
            assert [r["state"] for r in breaches.of("down-crossing")] == ["breach"]
            assert crossing["event_id"] in {e.id for e in second}
            assert crossing["value"] == 3501
            whales = [r["event_id"] for r in breaches.of("whale")]
            assert len(whales) == len(set(whales)), "a whale liquidation was reported twice"
            assert set(whales) == {e.id for e in first + second if e.notional_usd > WHALE_USD}

            # Rules reload: a new rule already past its threshold reports at once...
            rules_file.write_text(
                RULES + "  - {name: added, metric: count, window: 1h, above: 100}\n"
            )
            added = await breaches.wait_for("added", timeout_s=30)
            assert added["event_id"] is None and added["value"] == 4_000
            # ...SIGHUP reloads a file whose change the modification time does not show...
            unchanged = rules_file.stat().st_mtime_ns
            rules_file.write_text(
                RULES
                + "  - {name: added, metric: count, window: 1h, above: 100}\n"
                + "  - {name: on-hup, metric: count, window: 1h, above: 200}\n"
            )
            os.utime(rules_file, ns=(unchanged, unchanged))
            await asyncio.sleep(2)
            assert breaches.of("on-hup") == []  # not seen without the signal
            assert worker.process is not None
            worker.process.send_signal(signal.SIGHUP)
            await breaches.wait_for("on-hup", timeout_s=30)
            # ...and an invalid file, signalled with SIGHUP, keeps the rules in force.
            rules_file.write_text("rules:\n  - {name: broken, metric: nope}\n")
            worker.process.send_signal(signal.SIGHUP)
            await asyncio.sleep(2)
            assert worker.process.poll() is None
            await produce(settings, recent_events(1, seed=99))
            await totals.wait_for_count(4_001)
            assert len(breaches.of("market-count")) == 1 and len(breaches.of("added")) == 1
            assert "rules file not reloaded" in worker.log_path.read_text()
    finally:
        worker.stop(signal.SIGKILL)


async def test_worker_refuses_an_invalid_rules_file(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - {name: x, metric: count, window: 5m, abve: 3}\n")
    worker = Worker(kafka_settings, tmp_path, "w")
    worker.env["LIQSTREAM_RULES_FILE"] = str(rules_file)
    worker.start()
    assert worker.process is not None
    assert worker.process.wait(60) == 1
    assert "rules.yaml:2: rule 'x': unknown field 'abve'" in worker.log_path.read_text()


async def test_time_alone_recovers_a_rule_while_no_event_arrives(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """The timer's path: a burst breaches a 10 s rule, then nothing arrives, and the worker
    publishes the recovery when the burst leaves the window (event_id null)."""
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - {name: burst, metric: count, window: 10s, above: 5}\n")
    worker = Worker(settings, tmp_path, "worker")
    worker.env.update(
        LIQSTREAM_RULES_FILE=str(rules_file), LIQSTREAM_RESOLUTION="1s", LIQSTREAM_WINDOWS="10s,1h"
    )
    worker.start()
    try:
        async with Breaches(settings) as breaches:
            await wait_active(worker)
            now = int(time.time() * 1000)
            burst = [dataclasses.replace(e, ts=now) for e in recent_events(8, seed=11)]
            await produce(settings, burst)
            breach = await breaches.wait_for("burst", timeout_s=60)
            assert breach["state"] == "breach" and breach["event_id"] in {e.id for e in burst}
            deadline = time.monotonic() + 60
            while len(breaches.of("burst")) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert [r["state"] for r in breaches.of("burst")] == ["breach", "recovered"]
            recovered = breaches.of("burst")[1]
            assert recovered["event_id"] is None and recovered["value"] == 0
            assert recovered["ts"] // 1000 == now // 1000 + 10  # when the burst's second left
    finally:
        worker.stop(signal.SIGKILL)
