"""The worker against real Kafka: restarts, kill -9, workers joining and leaving, duplicates.

After every disturbance the latest totals record of every key must equal the brute-force
truth over every event produced, none counted twice or lost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.synthetic import synthetic_events
from stream.config import Settings, load_settings
from stream.kafka import Topics, client_options
from stream.localkafka import free_port
from stream.schema import LiquidationEvent
from stream.topics import ensure_topics
from tests.worker.reference import brute_force_totals

pytestmark = pytest.mark.kafka

WINDOWS = "1h,24h"  # events stay well inside both while a test runs


class Worker:
    """`liqstream worker` in a child process, as an operator would run it."""

    def __init__(self, settings: Settings, data_dir: Path, name: str) -> None:
        self.env = {
            **os.environ,
            "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
            "LIQSTREAM_WINDOWS": WINDOWS,
            "LIQSTREAM_DATA_DIR": str(data_dir / name),
            "LIQSTREAM_WEB_PORT": str(free_port()),
            "LIQSTREAM_TOTALS_MIN_INTERVAL": "250ms",
            "LIQSTREAM_LOG_LEVEL": os.environ.get("TEST_WORKER_LOG_LEVEL", "WARNING"),
        }
        self.log_path = data_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def produce(settings: Settings, events: list[LiquidationEvent]) -> None:
    producer = AIOKafkaProducer(**client_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        topic = Topics.with_prefix(settings.topic_prefix).liquidations
        for event in events:
            await producer.send(
                topic, event.to_json(), key=f"{event.exchange}:{event.symbol}".encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


class TopicReader:
    """Every record of one output topic, read from the beginning by a long-lived consumer."""

    topic_of: Callable[[Topics], str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: asyncio.Task[None] | None = None

    def handle(self, key: bytes | None, value: dict) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        consumer = AIOKafkaConsumer(
            type(self).topic_of(Topics.with_prefix(self.settings.topic_prefix)),
            **client_options(self.settings),
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self._task = asyncio.create_task(self._read(consumer))
        return self

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=100)
                for records in batch.values():
                    for record in records:
                        self.handle(record.key, orjson.loads(record.value))
        finally:
            await consumer.stop()

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


class Totals(TopicReader):
    """The latest record per key of the totals topic."""

    topic_of = staticmethod(lambda topics: topics.totals)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.latest: dict[str, dict] = {}

    def handle(self, key: bytes | None, value: dict) -> None:
        assert key is not None
        self.latest[key.decode()] = value

    def count(self) -> int | None:
        return self.latest.get("*:*:24h", {}).get("count")

    async def wait_for_count(self, count: int, timeout_s: float = 120) -> dict[str, dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count() == count:
                await asyncio.sleep(1.0)  # let the last tick of every key land
                return dict(self.latest)
            await asyncio.sleep(0.2)
        raise AssertionError(f"24h count never reached {count} (last seen {self.count()})")


def assert_exact(latest: dict[str, dict], events: list[LiquidationEvent]) -> None:
    dicts = [event.to_dict() for event in events]
    windows = {"1h": 3_600_000, "24h": 86_400_000}
    checked = 0
    truths: dict[int, dict] = {}  # one brute-force pass per publish tick, not per record
    for key, record in latest.items():
        as_of = record["as_of"]
        if as_of not in truths:
            truths[as_of] = brute_force_totals(dicts, as_of, windows, 60_000)
        truth = truths[as_of]
        want = truth.get((record["exchange"], record["coin"], record["window"]))
        if want is None:
            assert record["count"] == 0, key
            continue
        assert record["long_count"] == want["long_count"], key
        assert record["short_count"] == want["short_count"], key
        tolerance = 1e-6 * record["count"]
        assert record["long_usd"] == pytest.approx(want["long_usd"], rel=1e-12, abs=tolerance), key
        assert record["short_usd"] == pytest.approx(want["short_usd"], rel=1e-12, abs=tolerance)
        assert record["largest"]["id"] == want["largest_id"], key
        checked += 1
    assert checked >= 2 * (1 + 10 + 8)  # all, coins and exchanges at least, in both windows


async def check_http(worker: Worker, latest: dict[str, dict]) -> None:
    base = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/healthz") as response:
            assert response.status == 200
        async with session.get(f"{base}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["active"] is True
        async with session.get(
            f"{base}/api/totals", params={"window": "24h", "coin": "btc"}
        ) as response:
            body = await response.json()
        assert {(r["exchange"], r["coin"]) for r in body["totals"]} == {
            (r["exchange"], "BTC")
            for r in latest.values()
            if r["coin"] == "BTC" and r["window"] == "24h"
        }
        async with session.get(f"{base}/api/totals", params={"window": "7m"}) as response:
            assert response.status == 400
            assert "unknown window '7m'" in (await response.json())["error"]
        async with session.get(f"{base}/metrics") as response:
            assert "liqstream_worker_active 1.0" in await response.text()


def worker_settings(kafka_settings: Settings) -> Settings:
    """The test's broker and topic prefix, with the windows the worker processes get."""
    return load_settings(
        kafka_bootstrap=kafka_settings.kafka_bootstrap,
        topic_prefix=kafka_settings.topic_prefix,
        windows=WINDOWS,
    )


def recent_events(count: int, seed: int) -> list[LiquidationEvent]:
    now = int(time.time() * 1000)
    return list(synthetic_events(count, start_ms=now - 600_000, span_ms=590_000, seed=seed))


async def test_restart_kill_9_and_duplicates(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    first = recent_events(2_000, seed=1)
    await produce(settings, first)
    worker = Worker(settings, tmp_path, "w").start()
    try:
        async with Totals(settings) as totals:
            latest = await totals.wait_for_count(2_000)
            assert_exact(latest, first)
            await check_http(worker, latest)
            worker.stop(signal.SIGTERM)  # a clean restart

            second = recent_events(2_000, seed=2)
            await produce(settings, second + first[:500])  # with 500 duplicates of old events
            worker.start()
            assert_exact(await totals.wait_for_count(4_000), first + second)

            third = recent_events(30_000, seed=3)
            producing = asyncio.create_task(produce(settings, third))
            while totals.count() == 4_000:
                await asyncio.sleep(0.05)
            assert not producing.done()  # the stream is still flowing when the worker dies
            worker.stop(signal.SIGKILL)
            await producing
            await produce(settings, third[:1_000])  # and the producer repeats itself
            worker.start()
            everything = first + second + third
            assert_exact(await totals.wait_for_count(len(everything), timeout_s=180), everything)
    finally:
        worker.stop(signal.SIGKILL)


# Seen once in five CI runs before the batcher stopped forwarding records of revoked
# partitions and survived a refused commit (5d9ef13): the count stopped 2 % short, a stranded
# partition. 32 runs since, 8 of them with a CPU hog alongside, all passed. One retry keeps a
# rare rebalance hiccup of the machine from failing CI; a real regression fails both runs.
@pytest.mark.flaky(reruns=1)
async def test_workers_joining_and_leaving(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    events = recent_events(12_000, seed=7)
    one = Worker(settings, tmp_path, "one").start()
    two = Worker(settings, tmp_path, "two")
    try:
        async with Totals(settings) as totals:
            await produce(settings, events[:4_000])
            await totals.wait_for_count(4_000)
            two.start()  # joins mid-stream
            await produce(settings, events[4_000:8_000])
            one.stop(signal.SIGTERM)  # leaves mid-stream
            await produce(settings, events[8_000:])
            assert_exact(await totals.wait_for_count(12_000, timeout_s=180), events)
    finally:
        one.stop(signal.SIGKILL)
        two.stop(signal.SIGKILL)
