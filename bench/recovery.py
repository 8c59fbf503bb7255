"""Recovery time: a worker holding a day of state is killed (-9) and started again.

A fresh set of topics is filled with `events` events spread over the last 24 h and over
`symbols` (exchange, symbol) pairs; a worker counts them all; it is killed with SIGKILL and
started on the same data dir. Measured from the restart: seconds until /readyz answers 200,
seconds until the `*:*:24h` totals record counts every event again (exact: neither short nor
over), seconds until the view has read the history topic too (/api/history answers), and the
restarted worker's peak RSS. Then killed again and restarted with LIQSTREAM_WORKER_API=false
(as docker-compose runs it: `liqstream api` serves, the worker keeps no history), measured the
same. Last, where the time and memory go: each phase of a restart alone, one after another in
a process of its own (`python -m bench.recovery PREFIX`): seconds and RSS growth.
Goal (issue 11): exact within 10 s, under 300 MB.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from bench.synthetic import EXCHANGES, linear_event
from stream.config import Settings, load_settings
from stream.engine.aggregation import Aggregation
from stream.engine.buckets import decode_bucket
from stream.kafka import Topics, client_options
from stream.localkafka import free_port
from stream.schema import LiquidationEvent
from stream.topics import ensure_topics
from stream.view.history import HistoryStore
from stream.worker.batcher import Batcher, record_ids
from stream.worker.memory import tune_gc

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


def start(
    settings: Settings, workdir: Path, port: int, api: bool = True
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LIQSTREAM_DATA_DIR": str(workdir / "worker"),
        "LIQSTREAM_WEB_PORT": str(port),
        "LIQSTREAM_TOTALS_MIN_INTERVAL": "1s",
        "LIQSTREAM_LOG_LEVEL": os.environ.get("LIQSTREAM_LOG_LEVEL", "WARNING"),
        "LIQSTREAM_WORKER_API": "true" if api else "false",
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


async def topic_partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def totals_end(settings: Settings) -> dict[TopicPartition, int]:
    """The end offset of every partition of the totals topic."""
    topic = Topics.with_prefix(settings.topic_prefix).totals
    tps = await topic_partitions(settings, topic)
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


async def wait_ready(
    port: int, worker: subprocess.Popen[bytes], timeout_s: float, field: str = "ready"
) -> float:
    """The time /readyz first says `field` is true."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError("the worker exited; see its worker.log")
            try:
                async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if (await response.json()).get(field):
                        return time.monotonic()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise TimeoutError(f"/readyz never said {field}")


async def restart(
    settings: Settings,
    workdir: Path,
    port: int,
    worker: subprocess.Popen[bytes],
    events: int,
    api: bool,
) -> tuple[subprocess.Popen[bytes], dict[str, float]]:
    """kill -9 `worker`, start a new one: its figures (see the module's docstring)."""
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    since = await totals_end(settings)
    restarted = time.monotonic()
    worker = start(settings, workdir, port, api)
    ready = await wait_ready(port, worker, timeout_s=600)
    exact, seen = await wait_exact(settings, events, since, timeout_s=600)
    figures = {
        "restart_to_ready_s": ready - restarted,
        "restart_to_exact_s": exact - restarted,
        "counts_before_exact": len(seen) - 1,
    }
    if api:
        history = await wait_ready(port, worker, timeout_s=900, field="history_caught_up")
        figures["restart_to_history_s"] = history - restarted
    await asyncio.sleep(1)
    figures["restart_peak_rss_mb"] = peak_rss_mb(worker.pid)
    return worker, figures


async def measure_recovery(
    bootstrap: str, workdir: Path, events: int = 2_000_000, symbols: int = 2_000
) -> dict[str, Any]:
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
        worker, with_api = await restart(settings, workdir, port, worker, events, api=True)
        await asyncio.sleep(3)
        worker, without_api = await restart(settings, workdir, port, worker, events, api=False)
        worker.send_signal(signal.SIGTERM)  # the phases below alone on the machine
        worker.wait(60)
        return {
            "events": events,
            "symbols": symbols,
            "fill_s": filled - began,
            "first_load_s": loaded - filled,
            "first_load_peak_rss_mb": loaded_rss,
            **with_api,
            "worker_api_false": without_api,
            "phases": await asyncio.to_thread(measure_phases, settings.topic_prefix, bootstrap),
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def measure_phases(prefix: str, bootstrap: str) -> dict[str, dict[str, float]]:
    """Each phase of a restart alone, in a process of its own (see `phases`)."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.recovery", prefix, bootstrap],
        capture_output=True,
        check=True,
        timeout=1_800,
    )
    result: dict[str, dict[str, float]] = json.loads(done.stdout.splitlines()[-1])
    return result


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def read_topic(
    settings: Settings, topic: str, take: Callable[[ConsumerRecord[bytes, bytes]], None]
) -> int:
    """Every record of `topic` (committed ones) to `take`; how many."""
    tps = await topic_partitions(settings, topic)
    consumer = AIOKafkaConsumer(
        **client_options(settings), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining, count = set(tps), 0
        while remaining:
            for records in (await consumer.getmany(*remaining, timeout_ms=500)).values():
                for record in records:
                    take(record)
                count += len(records)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        return count
    finally:
        await consumer.stop()


async def phases(prefix: str, bootstrap: str) -> dict[str, dict[str, float]]:
    """What a restarted worker does, phase by phase, with the worker's own code: read the
    bucket table's changelog (the worker reads RocksDB instead, the same values) and decode
    it, rebuild every window's sums, make the totals records; rebuild the batcher's memory of
    forwarded ids from the batches topic; read the history topic into /api/history's store.
    Seconds, and RSS growth kept (what the phase holds once done; after a full collection)."""
    settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=prefix)
    topics = Topics.with_prefix(prefix)
    tune_gc()  # as the worker runs
    now_ms = time.time_ns() // 1_000_000
    out: dict[str, dict[str, float]] = {}
    clock: list[float] = []

    def begin() -> None:
        gc.collect()
        clock[:] = [time.monotonic(), rss_mb()]

    def end(name: str, **counts: int) -> None:
        seconds = time.monotonic() - clock[0]
        gc.collect()
        out[name] = {"s": round(seconds, 2), "rss_mb": round(rss_mb() - clock[1]), **counts}

    begin()
    raw: dict[bytes, bytes | None] = {}
    changelog = f"{prefix}{settings.worker_id}-buckets-changelog"
    n = await read_topic(settings, changelog, lambda r: raw.__setitem__(r.key or b"", r.value))
    end("buckets_changelog_read", records=n)
    begin()
    buckets = {int(orjson.loads(k)): decode_bucket(v) for k, v in raw.items() if v is not None}
    raw.clear()
    end("buckets_decode", buckets=len(buckets))
    begin()
    aggregation = Aggregation(settings.windows_ms, settings.resolution_ms)
    aggregation.load(buckets, now_ms)
    end("windows_rebuild")
    begin()
    records = list(aggregation.publish(now_ms))
    end("totals_records", records=len(records))
    del records, aggregation, buckets
    begin()
    seen = Batcher(settings, group_id="bench").seen

    def remember(record: ConsumerRecord[bytes, bytes]) -> None:
        for exchange, event_id, ts in record_ids(record.value, record.headers):
            seen.add(exchange, event_id, ts)

    n = await read_topic(settings, topics.batches, remember)
    end("forwarded_ids_rebuild", batches=n, ids=len(seen))
    begin()
    store = HistoryStore(
        settings.resolution_ms, settings.history_fine_horizon_ms, settings.history_retention_ms
    )

    def keep(record: ConsumerRecord[bytes, bytes]) -> None:
        if record.value is not None:
            store.add(orjson.loads(record.value), now_ms)

    n = await read_topic(settings, topics.history, keep)
    store.settle(now_ms)
    rows = sum(len(rows) for rows in store.fine.values())
    end("history_store", records=n, rows=rows)
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(phases(sys.argv[1], sys.argv[2]))))
