"""The HTTP API of real workers against real Kafka: every endpoint, its 400s, live SSE, and
two workers answering the same queries identically."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from stream.config import Settings
from stream.kafka import Topics, client_options
from stream.topics import ensure_topics
from stream.worker.web import OPENAPI
from tests.api.test_view import coverage_record
from tests.worker.test_breaches_kafka import wait_active
from tests.worker.test_worker_kafka import (
    Totals,
    Worker,
    produce,
    recent_events,
    worker_settings,
)

pytestmark = pytest.mark.kafka


def base(worker: Worker) -> str:
    return f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}"


async def get(session: aiohttp.ClientSession, worker: Worker, path: str, **params: str):
    async with session.get(base(worker) + path, params=params) as response:
        return response.status, await response.json()


async def wait_ready(session: aiohttp.ClientSession, worker: Worker, timeout_s: float = 120):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            status, _ = await get(session, worker, "/readyz")
            if status == 200:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("worker never ready")


async def send(settings: Settings, topic: str, key: bytes, record: dict) -> None:
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(topic, orjson.dumps(record), key=key)
    finally:
        await producer.stop()


async def test_two_workers_answer_alike_live_stream_and_bad_parameters(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    rules = tmp_path / "rules.yaml"  # so that /api/breaches has something to agree on
    rules.write_text(
        "rules:\n  - {name: busy, metric: count, window: 1h, above: 500}\n"
        "  - {name: whale, metric: single_usd, above: 100000}\n"
    )
    one, two = Worker(settings, tmp_path, "one"), Worker(settings, tmp_path, "two")
    for worker in (one, two):
        worker.env["LIQSTREAM_RULES_FILE"] = str(rules)
    one.start()
    events = recent_events(1_000, seed=21)
    now = int(time.time() * 1000)
    status = {"exchange": "okx", "feed": "okx", "state": "connected", "ts": now, "url": "ws://x"}
    gap = {**status, "state": "gap", "gap_start": now - 5_000, "gap_end": now - 1_000}
    coverage = coverage_record("okx", now, 310, 309, "liquidation-orders.BTC-USD-251226")
    try:
        async with Totals(settings) as totals, aiohttp.ClientSession() as session:
            await wait_active(one)
            two.start()  # joins as the standby: it serves from the same view
            await produce(settings, events)
            await send(settings, topics.status, b"okx", status)
            await send(settings, topics.status, b"okx", coverage)
            await send(settings, topics.status, b"okx", gap)
            await totals.wait_for_count(1_000)
            for worker in (one, two):
                await wait_ready(session, worker)

            queries = [
                ("/api/totals", {}),
                ("/api/totals", {"window": "24h", "exchange": "all", "coin": "all"}),
                ("/api/totals", {"coin": "BTC", "window": "1h"}),
                ("/api/largest", {"window": "1h", "limit": "5"}),
                ("/api/coverage", {}),
                ("/api/breaches", {}),
            ]
            deadline = time.monotonic() + 30
            while True:  # the standby worker reads the same topics: it converges
                answers = []
                for path, params in queries:
                    a = await get(session, one, path, **params)
                    b = await get(session, two, path, **params)
                    for body in (a[1], b[1]):
                        body.pop("as_of", None)
                    answers.append((path, a, b))
                if all(a == b for _, a, b in answers) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            for path, a, b in answers:
                assert a == b, path
                assert a[0] == 200, path
            breaches = answers[-1][1][1]["breaches"]
            assert {r["rule"] for r in breaches} == {"busy", "whale"}, breaches
            market = answers[1][1][1]["totals"]
            assert [r["count"] for r in market] == [1_000]
            biggest = max(events, key=lambda e: (e.notional_usd, -e.ts))
            assert answers[3][1][1]["largest"][0]["id"] == biggest.id
            okx = next(v for v in answers[4][1][1]["venues"] if v["feed"] == "okx")
            assert okx["state"] == "connected" and okx["lower_bound"] is True
            assert okx["gaps_24h"] == [{"start": now - 5_000, "end": now - 1_000}]
            assert (okx["instruments_subscribed"], okx["instruments_listed"]) == (309, 310)
            assert okx["rejected"] == coverage["rejected"] and okx["coverage_as_of"] == now

            for path, params, reason in [
                ("/api/totals", {"window": "7m"}, "unknown window '7m'"),
                ("/api/totals", {"venue": "okx"}, "unknown parameter 'venue'"),
                ("/api/breaches", {"limit": "-1"}, "limit must be a whole number"),
                ("/api/largest", {"window": "3h"}, "unknown window '3h'"),
                ("/api/coverage", {"feed": "okx"}, "unknown parameter 'feed'"),
            ]:
                code, body = await get(session, two, path, **params)
                assert (code, reason in body["error"]) == (400, True), (path, body)

            # live: a breach and a totals change arrive over SSE without polling
            async with session.get(base(two) + "/api/stream") as response:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                breach = {
                    "rule": "r",
                    "state": "breach",
                    "metric": "count",
                    "window": "1h",
                    "exchange": None,
                    "coin": None,
                    "value": 1001,
                    "threshold": 1000,
                    "ts": now,
                    "event_id": "x",
                }
                await send(settings, topics.breaches, b"r", breach)
                await send(settings, topics.status, b"okx", {**status, "state": "disconnected"})
                await produce(settings, recent_events(1, seed=22))
                seen: set[str] = set()
                deadline = time.monotonic() + 60
                wanted = {"breach", "status", "totals"}  # and `history` as buckets close
                while not wanted <= seen and time.monotonic() < deadline:
                    line = await asyncio.wait_for(response.content.readline(), 30)
                    if line.startswith(b"event: "):
                        kind = line[7:].strip().decode()
                        data = await response.content.readline()
                        record = json.loads(data[6:])
                        if kind == "breach":
                            if record["rule"] != "r":
                                continue  # the worker's own rules at work
                            assert record == breach
                        if kind == "status" and record["state"] != "disconnected":
                            continue  # read just before: a stream may start up to a tick early
                        seen.add(kind)
                assert wanted <= seen <= {*wanted, "history"}
            deadline = time.monotonic() + 30
            while True:  # worker one reads the breach on its own
                code, body = await get(session, one, "/api/breaches", rule="r")
                if body["breaches"] or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
            assert body["breaches"] == [breach]

            async with session.get(base(one) + "/openapi.json") as response:
                assert await response.json() == json.loads(OPENAPI.read_text())
            async with session.get(base(two) + "/metrics") as response:
                metrics = await response.text()  # the streams of a worker that serves them
            assert "liqstream_stream_clients " in metrics
            assert "liqstream_stream_ticks_total " in metrics
    finally:
        one.stop(signal.SIGKILL)
        two.stop(signal.SIGKILL)


class Api(Worker):
    """`liqstream api` in a child process. Its port is also in env["LIQSTREAM_WEB_PORT"], so
    that every helper addressing a worker's API addresses it alike."""

    def __init__(self, settings: Settings, data_dir: Path, name: str) -> None:
        super().__init__(settings, data_dir, name)
        self.env["LIQSTREAM_API_PORT"] = self.env["LIQSTREAM_WEB_PORT"]

    def start(self) -> Api:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stream", "api"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self


class Stream:
    """The (kind, record) events of one /api/stream response, read as they come."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.events: list[tuple[str, dict]] = []

    async def read_until(self, condition: Callable[[], bool], timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, self.events[-5:]
            line = await asyncio.wait_for(self.response.content.readline(), 30)
            if line.startswith(b"event: "):
                data = await self.response.content.readline()
                self.events.append((line[7:].strip().decode(), json.loads(data[6:])))

    def totals(self) -> dict[str, dict]:
        """The latest totals record per key, as the stream told them."""
        return {key_of(r): r for kind, r in self.events if kind == "totals"}


def key_of(record: dict) -> str:
    return f"{record['exchange'] or '*'}:{record['coin'] or '*'}:{record['window']}"


async def test_liqstream_api_serves_apart_from_the_worker_and_streams_filtered(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """A worker with LIQSTREAM_WORKER_API=false serves health and metrics only; `liqstream
    api` answers from the output topics: its totals are the topic's, its streams tell each
    key's latest record through each client's filter, and its metrics count the clients."""
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    worker = Worker(settings, tmp_path, "worker")
    worker.env["LIQSTREAM_WORKER_API"] = "false"
    api = Api(settings, tmp_path, "api")
    worker.start()
    api.start()
    events = recent_events(400, seed=41)
    try:
        async with Totals(settings) as totals, aiohttp.ClientSession() as session:
            await wait_active(worker)
            await wait_ready(session, api)
            async with session.get(base(worker) + "/api/totals") as response:
                assert response.status == 404  # the worker no longer serves the API
            async with session.get(base(worker) + "/readyz") as response:
                assert (await response.json())["history_caught_up"] is None  # none kept
            async with session.get(base(api) + "/api/stream", params={"window": "7m"}) as r:
                assert r.status == 400 and "unknown window" in (await r.json())["error"]
            btc_1h = {"coin": "btc", "window": "1h"}
            async with (
                session.get(base(api) + "/api/stream") as everything,
                session.get(base(api) + "/api/stream", params=btc_1h) as btc,
            ):
                assert everything.headers["Content-Type"].startswith("text/event-stream")
                status, metrics = 0, ""
                async with session.get(base(api) + "/metrics") as response:
                    status, metrics = response.status, await response.text()
                assert status == 200 and "liqstream_stream_clients 2.0" in metrics
                await produce(settings, events)
                latest = await totals.wait_for_count(len(events))
                told, told_btc = Stream(everything), Stream(btc)
                await told.read_until(
                    lambda: told.totals().get("*:*:24h", {}).get("count") == len(events)
                )
                btc_keys = {k for k, r in latest.items() if r["coin"] == "BTC" and "1h" in k}
                assert btc_keys
                await told_btc.read_until(
                    lambda: (
                        {k: r["count"] for k, r in told_btc.totals().items()}
                        == {k: latest[k]["count"] for k in btc_keys}
                    )
                )
                assert {kind for kind, _ in told_btc.events} <= {"totals", "status", "history"}
                history = [record for kind, record in told_btc.events if kind == "history"]
                assert all(record["coin"] == "BTC" for record in history)  # closed buckets
                assert set(told_btc.totals()) == btc_keys  # nothing outside its filter
            deadline = time.monotonic() + 30
            while True:  # the API has read the topic to the same latest records
                _, body = await get(session, api, "/api/totals")
                served = {key_of(r): r for r in body["totals"]}
                wanted = {k: r for k, r in totals.latest.items() if r["count"]}
                if served == wanted or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.5)
            assert served == wanted
            async with session.get(base(api) + "/") as response:
                assert response.status == 200 and "dashboard.js" in await response.text()
    finally:
        api.stop()
        worker.stop(signal.SIGKILL)
    assert api.process is not None and api.process.returncode == 0  # a clean stop on SIGTERM
