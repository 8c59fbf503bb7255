"""The two yardsticks the worker is measured against, in the same run and on the same topic.

(b) `raw_consumer_sums`: a plain aiokafka `getmany` loop that decodes each event and keeps
    24 h sums per scope in dicts: the client library's own ceiling.
(c) `naive_faust_hopping`: a Faust agent updating a hopping-window table (24 h windows, one
    per minute) once per event, the way Faust's documentation suggests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer

from stream.config import Settings
from stream.kafka import client_options
from stream.localkafka import free_port


async def raw_consumer_sums(settings: Settings, topic: str, expected: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    sums: dict[tuple[str | None, str | None], list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    seen = 0
    started = time.perf_counter()
    try:
        while seen < expected:
            batch = await consumer.getmany(timeout_ms=500, max_records=50_000)
            for records in batch.values():
                for record in records:
                    event = orjson.loads(record.value)
                    notional = event["notional_usd"]
                    is_long = event["side"] == "long"
                    for scope in (
                        (None, None),
                        (None, event["coin"]),
                        (event["exchange"], None),
                        (event["exchange"], event["coin"]),
                    ):
                        total = sums[scope]
                        total[0 if is_long else 1] += notional
                        total[2] += 1
                seen += len(records)
    finally:
        await consumer.stop()
    elapsed = time.perf_counter() - started
    return {"events": seen, "seconds": elapsed, "events_per_s": seen / elapsed}


NAIVE_FAUST_APP = """
import os, time, faust
from datetime import timedelta
expected = int(os.environ["BENCH_EXPECTED"])
budget_s = float(os.environ["BENCH_BUDGET_S"])  # it is slow: measure a rate, not a finish
app = faust.App(os.environ["BENCH_APP_ID"], broker="kafka://" + os.environ["BENCH_BOOTSTRAP"],
                store="memory://", web_enabled=False, web_port=int(os.environ["BENCH_WEB_PORT"]),
                topic_partitions=int(os.environ["BENCH_PARTITIONS"]),
                consumer_auto_offset_reset="earliest", datadir=os.environ["BENCH_DATADIR"])
topic = app.topic(os.environ["BENCH_TOPIC"], value_serializer="json")
totals = app.Table("naive-totals", default=float).hopping(
    timedelta(hours=24), timedelta(minutes=1), expires=timedelta(hours=25))
state = {"n": 0, "t0": None}

@app.agent(topic)
async def aggregate(stream):
    async for event in stream:
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        totals["all"] += event["notional_usd"]
        state["n"] += 1
        if state["n"] >= expected or time.perf_counter() - state["t0"] > budget_s:
            elapsed = time.perf_counter() - state["t0"]
            print(f"NAIVE {state['n']} {elapsed}", flush=True)
            os._exit(0)

app.main()
"""


def naive_faust_hopping(
    settings: Settings, topic: str, expected: int, workdir: Path, budget_s: float = 60
) -> dict[str, float]:
    """Events/s of the naive agent, measured over at most `budget_s` of processing."""
    timeout_s = budget_s + 120
    script = workdir / "naive_faust.py"
    script.write_text(NAIVE_FAUST_APP)
    env = {
        **os.environ,
        "BENCH_EXPECTED": str(expected),
        "BENCH_APP_ID": f"naive-{os.getpid()}-{int(time.time())}",
        "BENCH_BOOTSTRAP": settings.kafka_bootstrap,
        "BENCH_TOPIC": topic,
        "BENCH_DATADIR": str(workdir / "naive-data"),
        "BENCH_PARTITIONS": str(settings.topic_partitions),
        "BENCH_BUDGET_S": str(budget_s),
        "BENCH_WEB_PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, str(script), "worker", "-l", "warn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    for line in result.stdout.splitlines() + result.stderr.splitlines():
        if "NAIVE " in line:
            count_s, seconds_s = line.split("NAIVE ", 1)[1].split()[:2]
            events, elapsed = int(count_s), float(seconds_s)
            return {"events": events, "seconds": elapsed, "events_per_s": events / elapsed}
    raise RuntimeError(f"naive Faust run failed:\n{result.stderr[-3000:]}")
