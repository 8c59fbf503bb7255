"""Serving under load: many SSE clients and a steady /api/totals load while the worker takes a
steady event rate, with the API in a process of its own (`liqstream api`) or in the worker's.

Measured, on 127.0.0.1 only, bounded in clients and time:
- the worker: events sent vs applied (its /metrics, every 0.5 s), the largest backlog, the
  backlog when the last event was sent and how long it took to apply the rest;
- every SSE client: for every change of the `*:*:24h` totals record (as read from Kafka, with
  the time the worker wrote it), the delay until the client received that record or a later
  one of the same key (the stream coalesces); per client p99, and over all pairs;
- /api/totals (unfiltered, the largest answer): p50/p99/max under the load, and errors;
- CPU of the worker and API processes (from /proc) over the measurement.
The clients are raw asyncio protocols (HTTP/1.0, no chunking) in a process of their own
(bench/sse_clients.py), on the same cores as everything else; the event-loop lag of that
process and of the benchmark's are reported, as they add to the delays measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.sse_clients import LoopLag
from bench.synthetic import synthetic_events
from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.localkafka import free_port
from stream.topics import ensure_topics


def start(
    command: str, settings: Settings, workdir: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LIQSTREAM_DATA_DIR": str(workdir / command),
        "LIQSTREAM_LOG_LEVEL": "WARNING",
        "LIQSTREAM_METRICS_PORT": "0",
        **env,
    }
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / f"{command}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "stream", command],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


MODES = {
    "api": "liqstream api (own process)",
    "worker": "worker (dev mode)",
    "alone": "baseline: the worker alone, no clients",
}


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_ready(session: aiohttp.ClientSession, port: int, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.25)
    raise TimeoutError(f"nothing ready on port {port}")


async def applied(session: aiohttp.ClientSession, port: int) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("liqstream_worker_events_total "):
                return float(line.split()[1])
    return 0.0


class MarketChanges:
    """(as_of, time the worker wrote it) of every `*:*:24h` totals record, from Kafka."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.changes: list[tuple[int, float]] = []

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            Topics.with_prefix(self.settings.topic_prefix).totals,
            **client_options(self.settings),
            auto_offset_reset="latest",
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        if record.key == b"*:*:24h" and record.value:
                            at = record.value.find(b'"as_of":') + 8
                            as_of = int(record.value[at : record.value.find(b",", at)])
                            self.changes.append((as_of, record.timestamp / 1000))
        finally:
            await consumer.stop()


async def totals_load(
    session: aiohttp.ClientSession, port: int, rate_per_s: int, stop: asyncio.Event
) -> tuple[list[float], int]:
    """GET /api/totals at a fixed rate (each request on schedule, not after the previous one):
    the latencies in ms and the number of errors."""
    latencies: list[float] = []
    errors = 0
    if rate_per_s <= 0:
        await stop.wait()
        return latencies, errors
    url = f"http://127.0.0.1:{port}/api/totals"

    async def one() -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    return
        except aiohttp.ClientError:
            errors += 1
            return
        latencies.append((time.perf_counter() - started) * 1000)

    tasks = set()
    begin = time.monotonic()
    n = 0
    while not stop.is_set():
        delay = begin + n / rate_per_s - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
    await asyncio.gather(*tasks)
    return latencies, errors


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else None


def ordered_p99(values: list[float]) -> float:
    return percentile(values, 0.99) or 0.0


def delivery_delays(
    changes: list[tuple[int, float]], seen: list[tuple[float, int]]
) -> tuple[list[float], int]:
    """Per change: ms until the client got it or a later record of the key; and how many it
    never got (a later record included)."""
    delays, missed = [], 0
    cursor = 0
    for as_of, written in changes:
        while cursor < len(seen) and seen[cursor][1] < as_of:
            cursor += 1
        if cursor == len(seen):
            missed += 1
        else:
            delays.append((seen[cursor][0] - written) * 1000)
    return delays, missed


async def measure_serving(
    settings: Settings,
    workdir: Path,
    mode: str,
    clients: int = 1_000,
    totals_per_s: int = 100,
    rate_per_s: int = 2_000,
    seconds: int = 30,
) -> dict[str, Any]:
    """One run; `mode` is "api" (`liqstream api` beside a worker that serves no API),
    "worker" (the worker serves the API itself, as in `liqstream dev`) or "alone" (the
    baseline: the worker takes the same events and serves nobody)."""
    prefix = f"{settings.topic_prefix}serve{mode}."
    settings = settings.model_copy(update={"topic_prefix": prefix})
    await ensure_topics(settings)
    web_port, api_port = free_port(), free_port()
    worker_env = {"LIQSTREAM_WEB_PORT": str(web_port), "LIQSTREAM_TABLE_STORE": "memory"}
    processes = {}
    if mode == "api":
        worker_env["LIQSTREAM_WORKER_API"] = "false"
        processes["api"] = start("api", settings, workdir, {"LIQSTREAM_API_PORT": str(api_port)})
        serving_port = api_port
    else:
        serving_port = web_port
    if mode == "alone":  # the baseline: the same events, nobody served
        worker_env["LIQSTREAM_WORKER_API"] = "false"
        clients = totals_per_s = 0
    processes["worker"] = start("worker", settings, workdir, worker_env)
    producer = AIOKafkaProducer(**client_options(settings), linger_ms=5, acks=1)
    market = MarketChanges(settings)
    watcher = asyncio.create_task(market.run())
    sse: asyncio.subprocess.Process | None = None
    try:
        await producer.start()
        topic = Topics.with_prefix(prefix).liquidations
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await wait_ready(session, web_port)
            await wait_ready(session, serving_port)
            now_ms = int(time.time() * 1000)
            warm = list(synthetic_events(200, start_ms=now_ms - 60_000, span_ms=50_000, seed=7))
            for event in warm:
                key = f"{event.exchange}:{event.symbol}".encode()
                await producer.send(topic, event.to_json(), key=key)
            await producer.flush()
            connect_started = time.monotonic()
            clients_out = workdir / f"clients-{mode}.json"
            sse = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.sse_clients",
                str(serving_port),
                str(clients),
                str(clients_out),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert sse.stdin is not None and sse.stdout is not None
            line = await asyncio.wait_for(sse.stdout.readline(), 300)
            if line.strip() != b"ready":
                raise RuntimeError(f"the SSE clients did not connect: {line!r}")
            connect_s = time.monotonic() - connect_started
            await asyncio.sleep(3)  # the warm-up's totals have reached every client
            sse.stdin.write(b"reset\n")
            await sse.stdin.drain()
            market.changes.clear()
            lag = LoopLag()
            lagging = asyncio.create_task(lag.run())
            pids = {name: p.pid for name, p in processes.items()}
            pids.update(bench=os.getpid(), clients=sse.pid)
            cpu_before = {name: cpu_s(pid) for name, pid in pids.items()}
            machine_before, load_before = machine_busy_s(), os.getloadavg()[0]
            stop_load = asyncio.Event()
            load = asyncio.create_task(totals_load(session, serving_port, totals_per_s, stop_load))
            samples: list[tuple[float, float, float]] = []  # (t, sent, applied)
            sent = 0
            started = time.monotonic()

            async def sample() -> None:  # the worker's backlog, every 0.5 s
                while True:
                    done = await applied(session, web_port)
                    samples.append((time.monotonic() - started, len(warm) + sent, done))
                    await asyncio.sleep(0.5)

            sampler = asyncio.create_task(sample())
            events = synthetic_events(
                rate_per_s * seconds, start_ms=now_ms, span_ms=seconds * 1000, seed=8
            )
            for n, event in enumerate(events):
                delay = started + n / rate_per_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                key = f"{event.exchange}:{event.symbol}".encode()
                await producer.send(topic, event.to_json(), key=key)
                sent += 1
            await producer.flush()
            last_sent, last_sent_wall = time.monotonic(), time.time()
            sampler.cancel()
            total = len(warm) + sent
            applied_at_last_send = await applied(session, web_port)
            caught_up_s = None
            while time.monotonic() - last_sent < 60:
                if await applied(session, web_port) >= total:
                    caught_up_s = time.monotonic() - last_sent
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(3)  # the last totals reach the clients
            stop_load.set()
            latencies, errors = await load
            elapsed_s = time.monotonic() - started
            cpu = {
                name: round(100 * (cpu_s(pid) - cpu_before[name]) / elapsed_s, 1)
                for name, pid in pids.items()
            }
            final_applied = await applied(session, web_port)
            busy, total_s = (a - b for a, b in zip(machine_busy_s(), machine_before, strict=True))
            machine = {
                "cores": os.cpu_count(),
                "busy_pct_of_all_cores": round(100 * busy / total_s, 1),
                "busy_outside_this_run_pct_of_one_core": round(
                    100 * busy / elapsed_s - sum(cpu.values()), 1
                ),  # the broker (shared) and whatever else ran
                "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            }
            lagging.cancel()
            sse.stdin.close()
            await asyncio.wait_for(sse.wait(), 120)
            received = json.loads(clients_out.read_text())
    finally:
        if sse is not None and sse.returncode is None:
            sse.kill()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        await producer.stop()
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    # changes written while the clients were measured, up to the last that had time to arrive
    changes = [c for c in market.changes if c[1] <= last_sent_wall + 1]
    per_client_p99, pairs, missed = [], [], 0
    for client in received["clients"]:
        delays, lost = delivery_delays(changes, client["seen"])
        missed += lost
        pairs.extend(delays)
        if delays:
            per_client_p99.append(ordered_p99(delays))
    backlog = [s - a for _, s, a in samples]
    return {
        "mode": MODES[mode],
        "clients": clients,
        "clients_connected_s": round(connect_s, 1),
        "clients_ended_early": sum(client["ended"] for client in received["clients"]),
        "clients_loop_lag_p99_ms": round(received["loop_lag_p99_ms"], 1),
        "bench_loop_lag_p99_ms": round(ordered_p99(lag.lags_ms), 1),
        "events_per_s": rate_per_s,
        "seconds": seconds,
        "worker": {
            "events_sent": total,
            "events_applied": final_applied,
            "every_event_applied": final_applied >= total,
            "max_backlog_events": max(backlog, default=0),
            "backlog_first_half_max": max(backlog[: len(backlog) // 2], default=0),
            "backlog_second_half_max": max(backlog[len(backlog) // 2 :], default=0),
            "backlog_at_last_send": total - applied_at_last_send,
            "caught_up_after_last_send_s": caught_up_s,
        },
        "cpu_pct": cpu,  # of one core, over the measurement
        "machine": machine,
        "stream": {
            "market_changes": len(changes),
            "deliveries": len(pairs),
            "missed": missed,
            "p50_ms": statistics.median(pairs) if pairs else None,
            "p99_ms": percentile(pairs, 0.99),
            "max_ms": max(pairs, default=None),
            "client_p99_median_ms": statistics.median(per_client_p99) if per_client_p99 else None,
            "client_p99_worst_ms": max(per_client_p99, default=None),
            "kb_per_client_per_s": round(
                sum(c["bytes"] for c in received["clients"]) / max(clients, 1) / elapsed_s / 1024,
                1,
            ),
        },
        "totals_api": {
            "rate_per_s": totals_per_s,
            "requests": len(latencies) + errors,
            "errors": errors,
            "p50_ms": statistics.median(latencies) if latencies else None,
            "p99_ms": percentile(latencies, 0.99),
            "max_ms": max(latencies, default=None),
        },
    }


def market_records(count: int) -> list[dict[str, Any]]:
    """`count` distinct totals records shaped as the worker writes them (24h window)."""
    exchanges = ["binance", "bybit", "okx", "bitmex", "gate", "htx", "kraken", "deribit", None]
    coins = ["BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "AVAX", "LINK", "DOT", "LTC", None]
    records = []
    for exchange in exchanges:
        for coin in coins:
            for window in ("5m", "1h", "24h"):
                largest = {
                    "id": f"{exchange}-{coin}",
                    "exchange": exchange or "okx",
                    "symbol": f"{coin or 'BTC'}USDT",
                    "side": "long",
                    "price": 64_000.5,
                    "quantity": 1.25,
                    "notional_usd": 80_000.625,
                    "ts": 1_764_000_000_000,
                }
                records.append(
                    {
                        "exchange": exchange,
                        "coin": coin,
                        "window": window,
                        "as_of": 1_764_000_000_000,
                        "total_usd": 1_234_567.89,
                        "long_usd": 1_000_000.0,
                        "short_usd": 234_567.89,
                        "count": 42,
                        "long_count": 30,
                        "short_count": 12,
                        "largest": largest if exchange and coin else None,
                    }
                )
    return records[:count]


async def measure_fanout_cpu(
    clients: int, records_per_tick: int = 150, seconds: float = 10.0
) -> dict[str, Any]:
    """The API's CPU per client per tick, on real sockets and without Kafka: this process
    serves /api/stream (stream.view.server's app) to `clients` clients of
    bench/sse_clients.py, changing `records_per_tick` totals records every stream interval.
    CPU time is the process's own (time.process_time), so, unlike the delays above, it does
    not depend on what else runs on the machine."""
    from aiohttp import web

    from stream.config import load_settings
    from stream.view.server import build_app, build_feeder

    feeder = build_feeder(load_settings())
    feeding = asyncio.create_task(asyncio.Event().wait())  # stands in for the Kafka reader
    runner = web.AppRunner(build_app(feeder, feeding), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    out = Path(f"/tmp/liqstream-fanout-{os.getpid()}.json")
    sse = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.sse_clients",
        str(port),
        str(clients),
        str(out),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert sse.stdin is not None and sse.stdout is not None
    try:
        if (await asyncio.wait_for(sse.stdout.readline(), 300)).strip() != b"ready":
            raise RuntimeError("the SSE clients did not connect")
        records = market_records(records_per_tick)
        interval_s = feeder.settings.stream_interval_ms / 1000
        totals_topic = feeder.topics.totals
        ticks, started, cpu_started = 0, time.monotonic(), time.process_time()
        while time.monotonic() - started < seconds:
            for record in records:
                record["count"] += 1
                name = f"{record['exchange'] or '*'}:{record['coin'] or '*'}:{record['window']}"
                feeder._apply(totals_topic, name.encode(), orjson.dumps(record))
            feeder.tick()
            ticks += 1
            await asyncio.sleep(interval_s)
        await asyncio.sleep(1)  # the last writes
        cpu_s_used = time.process_time() - cpu_started
    finally:
        sse.stdin.close()
        await asyncio.wait_for(sse.wait(), 120)
        received = json.loads(out.read_text())
        out.unlink()
        feeding.cancel()
        feeder.close_streams()
        await runner.cleanup()
    per_tick_ms = 1000 * cpu_s_used / ticks
    return {
        "clients": clients,
        "records_per_tick": records_per_tick,
        "ticks": ticks,
        "cpu_ms_per_tick": round(per_tick_ms, 1),
        "cpu_us_per_client_per_tick": round(1000 * per_tick_ms / max(clients, 1), 1),
        "kb_per_client_per_tick": round(
            sum(c["bytes"] for c in received["clients"]) / max(clients, 1) / ticks / 1024, 1
        ),
        "clients_ended": sum(c["ended"] for c in received["clients"]),
    }
