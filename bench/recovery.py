"""Recovery time: a worker holding a day of state is killed (-9) and started again.

A fresh set of topics is filled with `events` events spread over the last 24 h and over
`symbols` (exchange, symbol) pairs; a worker counts them all; it is killed with SIGKILL and
started on the same data dir. Measured from the restart: seconds until /readyz answers 200,
seconds until the `*:*:24h` totals record counts every event again (exact: neither short nor
over), and the restarted worker's peak RSS. Goal (issue 11): exact within 10 s, under 300 MB.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.synthetic import EXCHANGES, linear_event
from stream.config import Settings, load_settings
from stream.kafka import Topics, client_options
from stream.localkafka import free_port
from stream.schema import LiquidationEvent
from stream.topics import ensure_topics

DAY_MS = 86_400_000


def day_of_events(
    count: int, symbols: int, now_ms: int, seed: int = 5
) -> Iterator[LiquidationEvent]:
    """`count` events over the last 24 h (inside the 24h window for a while yet), spread over
    `symbols` (exchange, symbol) pairs: `symbols / len(EXCHANGES)` coins on every venue."""
    rng = random.Random(seed)
    coins = max(1, symbols // len(EXCHANGES))
    start_ms, span_ms = now_ms - DAY_MS + 30 * 60_000, DAY_MS - 35 * 60_000
    for n in range(count):
        exchange = EXCHANGES[n % len(EXCHANGES)]
        coin = f"C{rng.randrange(coins)}"
        price = rng.uniform(0.5, 500.0)
        notional = rng.lognormvariate(8.5, 1.6)
        ts = start_ms + (n * span_ms) // count
        yield linear_event(rng, f"rec-{seed}-{n}", exchange, coin, price, notional, ts)


async def fill(settings: Settings, count: int, symbols: int) -> None:
    topic = Topics.with_prefix(settings.topic_prefix).liquidations
    producer = AIOKafkaProducer(
        **client_options(settings), linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    try:
        for event in day_of_events(count, symbols, int(time.time() * 1000)):
            key = f"{event.exchange}:{event.symbol}".encode()
            await producer.send(topic, event.to_json(), key=key)
        await producer.flush()
    finally:
        await producer.stop()


def start(settings: Settings, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LIQSTREAM_DATA_DIR": str(workdir / "worker"),
        "LIQSTREAM_WEB_PORT": str(port),
        "LIQSTREAM_TOTALS_MIN_INTERVAL": "1s",
        "LIQSTREAM_LOG_LEVEL": "WARNING",
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "worker.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "stream", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def totals_end(settings: Settings) -> dict[TopicPartition, int]:
    """The end offset of every partition of the totals topic."""
    topic = Topics.with_prefix(settings.topic_prefix).totals
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(tps))
    finally:
        await consumer.stop()


async def wait_exact(
    settings: Settings, count: int, since: dict[TopicPartition, int], timeout_s: float
) -> tuple[float, list[int]]:
    """(wall time, counts seen) once a `*:*:24h` record written after `since` counts `count`."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False)
    await consumer.start()
    seen: list[int] = []
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=50)).values():
                for record in records:
                    if record.key == b"*:*:24h":
                        seen.append(orjson.loads(record.value)["count"])
                        if seen[-1] == count:
                            return time.monotonic(), seen
        raise TimeoutError(f"the 24h count never came back to {count} (seen {seen[-5:]})")
    finally:
        await consumer.stop()


async def wait_ready(port: int, worker: subprocess.Popen[bytes], timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError("the worker exited; see its worker.log")
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return time.monotonic()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError("the worker never got ready")


async def measure_recovery(
    bootstrap: str, workdir: Path, events: int = 2_000_000, symbols: int = 2_000
) -> dict[str, float]:
    settings = load_settings(
        kafka_bootstrap=bootstrap,
        topic_prefix=f"bench{int(time.time())}recovery.",
        topic_partitions=3,
    )
    await ensure_topics(settings)
    began = time.monotonic()
    await fill(settings, events, symbols)
    filled = time.monotonic()
    port = free_port()
    worker = start(settings, workdir, port)
    try:
        since = {tp: 0 for tp in await totals_end(settings)}
        assert since, "the totals topic has no partitions"
        loaded, _ = await wait_exact(settings, events, since, timeout_s=3_600)
        loaded_rss = peak_rss_mb(worker.pid)
        await asyncio.sleep(3)  # past a changelog flush and commit, as a running worker is
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        since = await totals_end(settings)
        restarted = time.monotonic()
        worker = start(settings, workdir, port)
        ready = await wait_ready(port, worker, timeout_s=600)
        exact, seen = await wait_exact(settings, events, since, timeout_s=600)
        await asyncio.sleep(1)
        return {
            "events": events,
            "symbols": symbols,
            "fill_s": filled - began,
            "first_load_s": loaded - filled,
            "first_load_peak_rss_mb": loaded_rss,
            "restart_to_ready_s": ready - restarted,
            "restart_to_exact_s": exact - restarted,
            "counts_before_exact": len(seen) - 1,
            "restart_peak_rss_mb": peak_rss_mb(worker.pid),
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
