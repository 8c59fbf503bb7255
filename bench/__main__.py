"""`make bench` / `python -m bench`: the worker against its yardsticks, in one run.

1. Pre-fill a fresh `liquidations` topic with N synthetic events (several venues and coins,
   event times within the last minutes, as a live feed has them).
2. Read it back with (b) a raw aiokafka loop keeping 24 h sums in dicts, (c) a naive Faust
   agent updating a hopping-window table per event, and (a) `liqstream worker` (all windows
   and scopes, changelog on, RocksDB), each from the beginning.
3. Latency: with the worker running, produce events at a steady rate and measure, per event,
   the time from its send to the first `*:*:24h` totals record that includes it.
4. Serving (bench/serving.py): 1,000 SSE clients and 100 req/s of /api/totals while the worker
   takes 2,000 events/s, with the API in its own process and in the worker's.
5. History memory (bench/history_memory.py): bytes per busy scope and day that /api/history's
   store holds in its 1m and hourly tiers, and its query times.
6. Recovery (bench/recovery.py): a worker holding a day of state (2M events over 2,000
   symbols by default) is killed with SIGKILL and restarted: seconds to /readyz, seconds until
   the totals are exact again, peak RSS.
Figures go to bench/results/<timestamp>.json and are summarised in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.baselines import naive_faust_hopping, raw_consumer_sums
from bench.history_memory import measure_history_memory
from bench.recovery import measure_recovery
from bench.serving import measure_fanout_cpu, measure_serving
from bench.synthetic import synthetic_events
from stream.config import Settings, load_settings
from stream.demo import RULES as DEMO_RULES
from stream.kafka import Topics, client_options
from stream.localkafka import LocalKafka, free_port
from stream.schema import LiquidationEvent
from stream.topics import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"


async def prefill(settings: Settings, count: int, seed: int) -> None:
    topic = Topics.with_prefix(settings.topic_prefix).liquidations
    producer = AIOKafkaProducer(
        **client_options(settings), linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    now = int(time.time() * 1000)
    try:
        for event in synthetic_events(count, start_ms=now - 300_000, span_ms=290_000, seed=seed):
            await producer.send(
                topic, event.to_json(), key=f"{event.exchange}:{event.symbol}".encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def paced(
    events: Iterable[LiquidationEvent], rate_per_s: float
) -> AsyncIterator[tuple[int, LiquidationEvent]]:
    """`events` numbered, at `rate_per_s` on a fixed schedule (sleeping only when ahead)."""
    start = time.monotonic()
    for n, event in enumerate(events):
        delay = start + n / rate_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield n, event


def start_worker(
    settings: Settings, workdir: Path, interval: str, extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LIQSTREAM_DATA_DIR": str(workdir / "worker"),
        "LIQSTREAM_WEB_PORT": str(port),
        "LIQSTREAM_TOTALS_MIN_INTERVAL": interval,
        "LIQSTREAM_LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "worker.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "worker"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return process, port


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def watch_all_totals(
    settings: Settings, until_count: int, timeout_s: float
) -> list[tuple[float, int, int]]:
    """(receive time, record CreateTime ms, count) of every `*:*:24h` record until the count."""
    consumer = AIOKafkaConsumer(
        Topics.with_prefix(settings.topic_prefix).totals,
        **client_options(settings),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    seen: list[tuple[float, int, int]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    if record.key == b"*:*:24h":
                        count = orjson.loads(record.value)["count"]
                        seen.append((time.time(), record.timestamp, count))
                        if count >= until_count:
                            return seen
        raise TimeoutError(f"worker did not reach {until_count} events")
    finally:
        await consumer.stop()


async def worker_counters(session: aiohttp.ClientSession, port: int) -> dict[str, float] | None:
    """The worker's event counters from its /metrics (None until it listens)."""
    try:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    except aiohttp.ClientError:
        return None
    counters = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("liqstream_worker_events_total", "liqstream_batcher_forwarded_total"):
            counters[name] = float(value)
    return counters


async def measure_worker(
    settings: Settings, count: int, workdir: Path, extra_env: dict[str, str] | None = None
) -> dict[str, float]:
    """Events/s through both stages: from the first scrape that sees stage one forward (or
    stage two apply) to the one that sees stage two's count reach `count`; the events forwarded
    before that first scrape are left out of the count."""
    worker, port = start_worker(settings, workdir, "1s", extra_env)
    first = done = None
    before = 0.0
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker exited ({worker.returncode}); see worker.log")
                counters = await worker_counters(session, port)
                now = time.perf_counter()
                if counters:
                    forwarded = counters.get("liqstream_batcher_forwarded_total", 0.0)
                    applied = counters.get("liqstream_worker_events_total", 0.0)
                    if first is None and (forwarded or applied):
                        # events stage one already forwarded count as fully done before
                        # the clock (conservative: stage two still had to apply them)
                        first, before = now, max(forwarded, applied)
                    if applied >= count:
                        done = now
                        break
                await asyncio.sleep(0.02)
        if first is None or done is None or done == first:
            raise RuntimeError("the worker did not process the events; see worker.log")
        return {
            "events": count,
            "seconds": done - first,
            "done_before_clock": before,
            "events_per_s": (count - before) / (done - first),
            "peak_rss_mb": peak_rss_mb(worker.pid),
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)


async def measure_latency(
    settings: Settings, workdir: Path, rate_per_s: int, seconds: int
) -> dict[str, float]:
    """Per-event latency from send to the first totals record that counts it."""
    prefix = settings.topic_prefix + "lat."
    settings = settings.model_copy(update={"topic_prefix": prefix})
    await ensure_topics(settings)
    worker, _ = start_worker(settings, workdir, "100ms")
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=0)
    await producer.start()
    topic = Topics.with_prefix(prefix).liquidations
    total = rate_per_s * seconds
    try:
        warmup = list(synthetic_events(1, start_ms=int(time.time() * 1000), span_ms=1, seed=99))
        await producer.send_and_wait(topic, warmup[0].to_json(), key=b"warm")
        await watch_all_totals(settings, 1, timeout_s=120)  # the worker is up
        sent_at: list[float] = []
        watcher = asyncio.create_task(watch_all_totals(settings, total + 1, timeout_s=300))
        now = int(time.time() * 1000)
        events = synthetic_events(total, start_ms=now, span_ms=seconds * 1000, seed=5)
        async for _, event in paced(events, rate_per_s):
            sent_at.append(time.time())
            await producer.send(
                topic, event.to_json(), key=f"{event.exchange}:{event.symbol}".encode()
            )
        await producer.flush()
        seen = await watcher
    finally:
        await producer.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    latencies = []
    records = [(t, c - 1) for t, _, c in seen]  # minus the warm-up event
    cursor = 0
    for index, sent in enumerate(sent_at):
        while records[cursor][1] < index + 1:
            cursor += 1
        latencies.append((records[cursor][0] - sent) * 1000)
    latencies.sort()
    return {
        "events": total,
        "rate_per_s": rate_per_s,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "publish_interval": "100ms",
    }


BREACH_MARKER_USD = 50_000_000.0  # far above any synthetic event: only markers fire


async def measure_breach_latency(
    settings: Settings, workdir: Path, rate_per_s: int, seconds: int, every: int = 100
) -> dict[str, float]:
    """Per-breach latency: from sending the causing event to `liquidations` until its breach
    record arrives on `liquidations.breaches`, under a steady background stream. Every
    `every`-th event is a marker above a `single_usd` rule's threshold."""
    prefix = settings.topic_prefix + "breach."
    settings = settings.model_copy(update={"topic_prefix": prefix})
    await ensure_topics(settings)
    workdir.mkdir(parents=True, exist_ok=True)
    rules = workdir / "rules.yaml"
    rules.write_text(
        "rules:\n"
        f"  - {{name: marker, metric: single_usd, above: {BREACH_MARKER_USD / 2:.0f}}}\n"
        "  - {name: market-5m, metric: total_usd, window: 5m, above: 1000000000000}\n"
        '  - {name: coins-1h, metric: count, window: 1h, scope: {coin: "*"}, above: 100000000}\n'
    )
    worker, _ = start_worker(settings, workdir, "1s", {"LIQSTREAM_RULES_FILE": str(rules)})
    topics = Topics.with_prefix(prefix)
    producer = AIOKafkaProducer(**client_options(settings), acks="all", linger_ms=0)
    consumer = AIOKafkaConsumer(
        topics.breaches, **client_options(settings), auto_offset_reset="earliest"
    )
    await producer.start()
    await consumer.start()
    arrived: dict[str, float] = {}

    async def collect() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for records in batch.values():
                for record in records:
                    arrived.setdefault(orjson.loads(record.value)["event_id"], now)

    collector = asyncio.create_task(collect())
    sent_at: dict[str, float] = {}
    try:
        warm = next(synthetic_events(1, start_ms=int(time.time() * 1000), span_ms=1, seed=98))
        warm = dataclasses.replace(warm, id="warm", notional_usd=BREACH_MARKER_USD)
        await producer.send_and_wait(topics.liquidations, warm.to_json(), key=b"warm")
        deadline = time.monotonic() + 120
        while "warm" not in arrived and time.monotonic() < deadline:  # the worker is up
            await asyncio.sleep(0.1)
        total = rate_per_s * seconds
        now = int(time.time() * 1000)
        events = synthetic_events(total, start_ms=now, span_ms=seconds * 1000, seed=6)
        async for n, event in paced(events, rate_per_s):
            if n % every == 0:
                event = dataclasses.replace(event, notional_usd=BREACH_MARKER_USD)
                sent_at[event.id] = time.time()
            await producer.send(
                topics.liquidations,
                event.to_json(),
                key=f"{event.exchange}:{event.symbol}".encode(),
            )
        await producer.flush()
        deadline = time.monotonic() + 60
        while not set(sent_at) <= set(arrived) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await consumer.stop()
        await producer.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    latencies = sorted((arrived[i] - t) * 1000 for i, t in sent_at.items() if i in arrived)
    return {
        "breaches": len(latencies),
        "markers_sent": len(sent_at),
        "background_rate_per_s": rate_per_s,
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": latencies[-1],
    }


async def main(
    count: int,
    big_count: int,
    output: Path | None,
    only: str | None = None,
    clients: int = 1_000,
    serving_seconds: int = 30,
    serving_load: tuple[int, int] = (2_000, 100),  # events/s into the worker, /api/totals req/s
    recovery_size: tuple[int, int] = (2_000_000, 2_000),  # events, symbols of the day's state
) -> dict:
    bootstrap = os.environ.get("LIQSTREAM_KAFKA_BOOTSTRAP")
    broker = None
    if not bootstrap:
        broker = LocalKafka(heap="1g")
        bootstrap = await asyncio.to_thread(broker.start)
    workdir = Path(tempfile.mkdtemp(prefix="liqstream-bench-"))
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        if only in (None, "history-memory"):
            results["history_memory"] = measure_history_memory()
            print("history memory", results["history_memory"], flush=True)
        # (label, events, worker environment): the large run once more with the demo's five
        # rules, on topics of its own (a worker reading batches already forwarded would skip
        # stage one's work)
        with_rules = {"LIQSTREAM_RULES_FILE": str(DEMO_RULES)}
        runs: tuple[tuple[str, int, dict[str, str]], ...] = (
            ("small", count, {}),
            ("large", big_count, {}),
            ("large-rules", big_count, with_rules),
        )
        if only in ("breach-latency", "serving", "fanout", "history-memory", "recovery"):
            runs = ()
        elif only == "throughput":
            runs = runs[1:]
        for label, n, worker_env in runs:
            prefix = f"bench{int(time.time())}{label.replace('-', '')}."
            settings = load_settings(
                kafka_bootstrap=bootstrap, topic_prefix=prefix, topic_partitions=3
            )
            await ensure_topics(settings)
            await prefill(settings, n, seed=1)
            topic = Topics.with_prefix(prefix).liquidations
            run: dict = {}
            run["raw_aiokafka"] = await raw_consumer_sums(settings, topic, n)
            print(label, "raw aiokafka", run["raw_aiokafka"], flush=True)
            if label == "small" and only is None:
                run["naive_faust"] = await asyncio.to_thread(
                    naive_faust_hopping, settings, topic, n, workdir
                )
                print(label, "naive faust", run["naive_faust"], flush=True)
            run["liqstream_worker"] = await measure_worker(settings, n, workdir / label, worker_env)
            print(label, "liqstream worker", run["liqstream_worker"], flush=True)
            run["worker_vs_raw"] = (
                run["liqstream_worker"]["events_per_s"] / run["raw_aiokafka"]["events_per_s"]
            )
            results[label] = run
        settings = load_settings(kafka_bootstrap=bootstrap, topic_prefix=f"bench{int(time.time())}")
        if only is None:
            results["latency"] = await measure_latency(
                settings, workdir / "latency", rate_per_s=2_000, seconds=15
            )
            print("latency", results["latency"], flush=True)
        if only in (None, "breach-latency"):
            results["breach_latency"] = await measure_breach_latency(
                settings, workdir / "breach", rate_per_s=2_000, seconds=20
            )
            print("breach latency", results["breach_latency"], flush=True)
        if only in (None, "serving", "fanout"):
            results["fanout_cpu"] = []
            for n in (100, clients):
                fanout = await measure_fanout_cpu(n)
                print("fan-out cpu", json.dumps(fanout), flush=True)
                results["fanout_cpu"].append(fanout)
        if only in (None, "serving"):
            results["serving"] = []
            for mode in ("alone", "api", "worker"):
                run = await measure_serving(
                    settings,
                    workdir / f"serving-{mode}",
                    mode,
                    clients,
                    totals_per_s=serving_load[1],
                    rate_per_s=serving_load[0],
                    seconds=serving_seconds,
                )
                print("serving", json.dumps(run), flush=True)
                results["serving"].append(run)
        if only in (None, "recovery"):
            events, symbols = recovery_size
            results["recovery"] = await measure_recovery(
                bootstrap, workdir / "recovery", events, symbols
            )
            print("recovery", results["recovery"], flush=True)
    finally:
        if broker is not None:
            await asyncio.to_thread(broker.stop)
    RESULTS.mkdir(exist_ok=True)
    path = output or RESULTS / f"{results['started'].replace(':', '')}.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--large-events", type=int, default=400_000)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--only",
        choices=["breach-latency", "throughput", "serving", "fanout", "history-memory", "recovery"],
        default=None,
        help="run one measurement only",
    )
    parser.add_argument("--clients", type=int, default=1_000, help="SSE clients (serving)")
    parser.add_argument("--serving-seconds", type=int, default=30, help="serving run length")
    parser.add_argument("--serving-events", type=int, default=2_000, help="events/s (serving)")
    parser.add_argument("--serving-totals", type=int, default=100, help="/api/totals req/s")
    parser.add_argument(
        "--recovery-events", type=int, default=2_000_000, help="events of the day's state"
    )
    parser.add_argument("--recovery-symbols", type=int, default=2_000, help="(venue, symbol)s")
    arguments = parser.parse_args()
    asyncio.run(
        main(
            arguments.events,
            arguments.large_events,
            arguments.output,
            arguments.only,
            arguments.clients,
            arguments.serving_seconds,
            (arguments.serving_events, arguments.serving_totals),
            (arguments.recovery_events, arguments.recovery_symbols),
        )
    )
