"""The history topic and /api/history against real Kafka, equal to `liqstream report --series`
on the same events bucket by bucket to the micro-dollar: after a session, and after a kill -9
of the worker mid-stream with the producer repeating itself."""

from __future__ import annotations

import asyncio
import io
import signal
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from stream.commands import series_lines
from stream.config import Settings, load_settings
from stream.engine.aggregation import Aggregation
from stream.engine.history import bucket_records
from stream.schema import LiquidationEvent
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

SCOPES = ({}, {"coin": "BTC"}, {"exchange": "binance"}, {"exchange": "okx", "coin": "eth"})


class History(TopicReader):
    """The latest record per key of the history topic."""

    topic_of = staticmethod(lambda topics: topics.history)

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.latest: dict[str, dict] = {}

    def handle(self, key: bytes | None, value: dict) -> None:
        assert key is not None
        self.latest[key.decode()] = value


def offline(events: list[LiquidationEvent], params: dict[str, str]) -> dict:
    """`liqstream report --series` on the events as JSON lines."""
    lines = [event.to_json() for event in events]
    out, err = io.StringIO(), io.StringIO()
    series_lines(lines, out, err, load_settings(windows="1h,24h"), params)
    assert err.getvalue() == ""
    return orjson.loads(out.getvalue())


def expected_records(events: list[LiquidationEvent]) -> dict[str, dict]:
    """Every history record the events make (all four kinds of scope), by key."""
    dicts = [event.to_dict() for event in events]
    last = max(event["ts"] for event in dicts)
    aggregation = Aggregation({"24h": 86_400_000}, 60_000)
    aggregation.load({}, last)
    aggregation.apply_batch(dicts, 0, last)
    return {
        key: record
        for bucket, value in aggregation.buckets.items()
        for key, record in bucket_records(bucket, value, 60_000)
    }


async def history_matches(
    worker: Worker, history: History, events: list[LiquidationEvent], timeout_s: float = 180
) -> None:
    """Waits (a hang guard, not a timing assertion) until every bucket of the events has
    closed and reached the topic and the API, then compares them with the offline series."""
    base = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}"
    first = min(e.ts for e in events)
    last = max(e.ts for e in events)
    window = {"from": str(first), "to": str(last + 1)}
    want_records = expected_records(events)
    wanted = {
        (tuple(sorted(scope.items())), interval): offline(
            events, {**window, **scope, "interval": interval}
        )
        for scope in SCOPES
        for interval in ("1m", "5m")
    }
    deadline = time.monotonic() + timeout_s
    got: dict = {}
    async with aiohttp.ClientSession() as session:
        while True:
            topic_ok = {k: history.latest.get(k) for k in want_records} == want_records
            got = {}
            for (scope, interval), _ in wanted.items():
                params = {**window, **dict(scope), "interval": interval}
                async with session.get(f"{base}/api/history", params=params) as response:
                    if response.status == 503:  # still reading the topic after a (re)start
                        assert (await response.json())["loading"] is True
                        assert int(response.headers["Retry-After"]) > 0
                        continue
                    assert response.status == 200, await response.text()
                    got[(scope, interval)] = await response.json()
            if topic_ok and got == wanted:
                break
            if time.monotonic() > deadline:
                missing = [k for k in want_records if history.latest.get(k) != want_records[k]]
                assert not missing, f"{len(missing)} history keys differ, e.g. {missing[:3]}"
                assert len(got) == len(wanted), "/api/history still loading"
                for key, answer in got.items():
                    assert answer == wanted[key], key
            await asyncio.sleep(1.0)
        async with session.get(f"{base}/api/history", params={"interval": "7s"}) as response:
            assert response.status == 400
            assert "interval" in (await response.json())["error"]
    market = got[((), "5m")]
    assert sum(b["count"] for b in market["buckets"]) == len({(e.exchange, e.id) for e in events})
    assert all(b["start"] % 300_000 == 0 for b in market["buckets"])


async def follow_history(worker: Worker, frames: list[dict], connected: asyncio.Event) -> None:
    """`event: history` records of /api/stream?coin=BTC, into `frames` (until cancelled)."""
    base = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/stream", params={"coin": "BTC"}) as response,
    ):
        assert response.status == 200
        connected.set()
        kind = None
        async for raw in response.content:
            text = raw.decode().rstrip("\n")
            if text.startswith("event: "):
                kind = text.removeprefix("event: ")
            elif text.startswith("data: ") and kind == "history":
                frames.append(orjson.loads(text.removeprefix("data: ")))


async def test_history_equals_the_offline_series_after_a_session_and_a_kill_9(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    first = recent_events(3_000, seed=11)
    await produce(settings, first)
    worker = Worker(settings, tmp_path, "w").start()
    try:
        async with Totals(settings) as totals, History(settings) as history:
            await totals.wait_for_count(3_000)
            await history_matches(worker, history, first)

            second = recent_events(20_000, seed=12)
            producing = asyncio.create_task(produce(settings, second))
            while totals.count() == 3_000:
                await asyncio.sleep(0.05)
            assert not producing.done()  # the stream is still flowing when the worker dies
            worker.stop(signal.SIGKILL)
            await producing
            await produce(settings, second[:1_000] + first[-500:])  # the producer repeats itself
            worker.start()
            everything = first + second
            await totals.wait_for_count(len(everything), timeout_s=180)
            await history_matches(worker, history, everything)

            # live: events late for buckets already closed reach the stream as history records
            # of the followed coin only, the topic's values (connected first, so no race with
            # the client's own start on a loaded machine)
            frames: list[dict] = []
            connected = asyncio.Event()
            following = asyncio.create_task(follow_history(worker, frames, connected))
            await asyncio.wait_for(connected.wait(), 60)
            late = recent_events(500, seed=13)
            await produce(settings, late)
            deadline = time.monotonic() + 120  # a hang guard, not a timing assertion
            while not frames and time.monotonic() < deadline and not following.done():
                await asyncio.sleep(0.2)
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
            everything += late
            await totals.wait_for_count(len(everything), timeout_s=180)
            await history_matches(worker, history, everything)
            assert frames and {(f["coin"], f["resolution_ms"]) for f in frames} == {("BTC", 60_000)}
            for frame in frames:
                key = f"{frame['exchange'] or '*'}:BTC:{frame['start']}"
                assert frame["count"] <= history.latest[key]["count"]
    finally:
        worker.stop(signal.SIGKILL)
