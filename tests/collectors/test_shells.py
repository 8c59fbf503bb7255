"""The collector shells without Kafka: reconnect rules, instrument refresh, the CLI commands."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import orjson
from aiohttp import web
from click.testing import CliRunner

from stream.cli import main
from stream.collectors.binance import FEEDS as BINANCE
from stream.collectors.connection import FeedConnection
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.venue import Feed
from stream.fake_exchange import FakeExchange, generated_frames
from stream.kafka import Topics
from tests.collectors.venue_helpers import fixture

USDM, COINM = BINANCE


class RecordingPublisher:
    """Stands in for the Kafka publisher: keeps what would have been sent."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict]] = []

    def submit(self, topic: str, key: str, value: bytes) -> bool:
        self.records.append((topic, key, orjson.loads(value)))
        return True

    def values(self, topic: str) -> list[dict]:
        return [value for t, _, value in self.records if t == topic]


TOPICS = Topics.with_prefix("")


def pipeline_for(
    feed: Feed, book: InstrumentBook | None = None
) -> tuple[FeedPipeline, RecordingPublisher]:
    publisher = RecordingPublisher()
    book = book or InstrumentBook(feed, url="")
    return FeedPipeline(feed, book, publisher, TOPICS, CollectorMetrics()), publisher  # type: ignore[arg-type]


@dataclasses.dataclass
class RunningCollector:
    """A collector's connection to a fake exchange, publishing into a RecordingPublisher."""

    connection: FeedConnection
    task: asyncio.Task[None]
    publisher: RecordingPublisher
    metrics: CollectorMetrics

    def live(self) -> set[str]:
        """The symbols with a liquidation published so far."""
        return {event["symbol"] for event in self.publisher.values(TOPICS.liquidations)}

    def coverage(self) -> dict:
        """The last coverage status record ({} before the first)."""
        records = [s for s in self.publisher.values(TOPICS.status) if s["state"] == "coverage"]
        return records[-1] if records else {}

    async def stop(self) -> None:
        self.connection.stop.set()
        await self.task


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


async def assert_follows_listing_change(
    collector: RunningCollector,
    book: InstrumentBook,
    fake: FakeExchange,
    late: str,
    gone: str,
    count: int,
    timeout_s: float = 30.0,
) -> None:
    """After a refresh of a listing that gained `late` and lost `gone`: `late` is live,
    `gone` unsubscribed, on the same connections, and coverage counts `count` again."""
    per_symbol = collector.connection.feed.per_symbol
    assert per_symbol is not None
    connections_before = fake.connections
    assert await book.refresh(force=True)
    await until(lambda: late in collector.live(), "the symbol listed later is live", timeout_s)
    await until(
        lambda: per_symbol.topic(gone) not in fake.subscribed_topics(),
        "the delisted symbol is unsubscribed",
        timeout_s,
    )
    assert fake.connections == connections_before  # without reconnecting
    await until(
        lambda: collector.coverage().get("instruments_subscribed") == count,
        "coverage after changes",
        timeout_s,
    )


async def run_collector(feed: Feed, book: InstrumentBook, fake: FakeExchange) -> RunningCollector:
    """Start `fake` and a collector connection of `feed` to it."""
    publisher, metrics = RecordingPublisher(), CollectorMetrics()
    pipeline = FeedPipeline(feed, book, publisher, TOPICS, metrics)  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    return RunningCollector(connection, asyncio.create_task(connection.run()), publisher, metrics)


async def run_for(connection: FeedConnection, seconds: float) -> None:
    task = asyncio.create_task(connection.run())
    await asyncio.sleep(seconds)
    connection.stop.set()
    await task


async def test_reconnects_before_the_maximum_connection_age() -> None:
    feed = dataclasses.replace(USDM, max_connection_age_s=0.4)
    fake = FakeExchange(feed, generated_frames(feed), interval_s=0.05)
    pipeline, publisher = pipeline_for(feed)
    connection = FeedConnection(pipeline, await fake.start())
    try:
        await run_for(connection, 1.5)
    finally:
        await fake.stop()
    statuses = publisher.values(TOPICS.status)
    reasons = [s.get("reason") for s in statuses if s["state"] == "disconnected"]
    assert fake.connections >= 3
    assert reasons[:2] == ["max_age", "max_age"]  # renewed, not dropped by the venue
    assert publisher.values(TOPICS.liquidations)


async def test_a_silent_connection_is_declared_dead() -> None:
    feed = dataclasses.replace(USDM, idle_timeout_s=0.3)
    fake = FakeExchange(feed, [], interval_s=0.05)  # accepts, then says nothing
    pipeline, publisher = pipeline_for(feed)
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.1)
    try:
        await run_for(connection, 1.5)
    finally:
        await fake.stop()
    reasons = [s.get("reason", "") for s in publisher.values(TOPICS.status)]
    assert any(reason.startswith("IdleConnection") for reason in reasons)
    assert fake.connections >= 2


async def test_unknown_symbol_triggers_one_refresh_then_parses(tmp_path: Path) -> None:
    calls = []

    async def exchange_info(request: web.Request) -> web.Response:
        calls.append(request.path)
        symbols = [{"symbol": "MYSTERY", "baseAsset": "ABC", "contractSize": 10}]
        return web.json_response({"symbols": symbols})

    app = web.Application()
    app.router.add_get("/dapi/v1/exchangeInfo", exchange_info)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}/dapi/v1/exchangeInfo"
        book = InstrumentBook(COINM, tmp_path, url=url)
        pipeline, publisher = pipeline_for(COINM, book)
        frame = orjson.loads(fixture("binance", "coinm_documented.json"))
        frame["o"]["s"] = "MYSTERY"
        (event,) = await pipeline.on_frame(orjson.dumps(frame).decode(), 1_762_290_000_000)
        # 1 contract of the refreshed 10 USD = 10 USD.
        assert (event.coin, event.notional_usd) == ("ABC", 10.0)
        assert calls == ["/dapi/v1/exchangeInfo"]
        assert (tmp_path / "binance-coinm.json").is_file()  # cached for the next start
        frame["o"]["s"] = "STILLUNKNOWN"
        assert await pipeline.on_frame(orjson.dumps(frame).decode(), 1_762_290_000_000) == []
        assert calls == ["/dapi/v1/exchangeInfo"]  # at most one refresh per interval
        dead = publisher.values(TOPICS.deadletter)
        assert [d["reason"] for d in dead] == ["unknown_symbol"]
    finally:
        await runner.cleanup()


def test_normalize_command() -> None:
    frames = "\n".join(
        [
            fixture("binance", "usdm_documented.json"),
            "{broken",
            fixture("binance", "usdm_documented.json"),
        ]
    )
    result = CliRunner().invoke(
        main, ["normalize", "--exchange", "binance", "--received-ts", "1762290000999"], input=frames
    )
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == 1  # the repeated frame is the same event
    assert (events[0]["side"], events[0]["notional_usd"]) == ("long", 138.74)
    (reject,) = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert (reject["source"], reject["reason"]) == ("binance-usdm", "invalid_json")


def test_normalize_command_names_unknown_exchanges() -> None:
    result = CliRunner().invoke(main, ["normalize", "--exchange", "nasdaq"], input="")
    assert result.exit_code != 0
    assert "unknown exchange or feed 'nasdaq'" in result.output


def test_fake_exchange_command_serves_the_venue_protocol(tmp_path: Path) -> None:
    frames = tmp_path / "frames.jsonl"
    frames.write_text("\n".join(islice(generated_frames(USDM), 3)) + "\n")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stream",
            "fake-exchange",
            "--exchange",
            "binance-usdm",
            "--frames",
            str(frames),
            "--interval",
            "0.01",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "/market/ws/!forceOrder@arr" in line, line
        url = line.split(" serving on ")[1].strip()

        async def read_three() -> list[str]:
            from websockets.asyncio.client import connect

            async with connect(url) as ws:
                return [str(await ws.recv()) for _ in range(3)]

        received = asyncio.run(read_three())
        assert received == frames.read_text().splitlines()
    finally:
        process.terminate()
        process.wait(10)


async def test_heartbeats_repeat_the_feeds_present_state() -> None:
    """Every interval a `heartbeat` record: connected, connections, last frame, coverage."""
    fake = FakeExchange(USDM, generated_frames(USDM), interval_s=0.02)
    pipeline, publisher = pipeline_for(USDM)
    connection = FeedConnection(pipeline, await fake.start(), status_interval_s=0.2)
    task = asyncio.create_task(connection.run())
    try:

        def beats() -> list[dict]:
            return [s for s in publisher.values(TOPICS.status) if s["state"] == "heartbeat"]

        async with asyncio.timeout(20):
            while not any(beat["connected"] for beat in beats()):
                await asyncio.sleep(0.05)
    finally:
        connection.stop.set()
        await task
        await fake.stop()
    beat = next(beat for beat in beats() if beat["connected"])
    listed = len(pipeline.book.symbols())
    assert beat["exchange"] == "binance" and beat["feed"] == USDM.name
    assert beat["interval_s"] == 0.2
    assert (beat["connections"], beat["connections_up"]) == (1, 1)
    assert isinstance(beat["last_frame_ts"], int) and beat["last_frame_ts"] <= beat["ts"]
    assert (beat["instruments_listed"], beat["instruments_subscribed"]) == (listed, listed)
    assert (beat["rejected"], beat["wildcard"]) == ([], True)
    count = len(beats())
    await asyncio.sleep(0.5)
    assert len(beats()) == count  # a stopped feed sends none


def test_fake_exchange_command_serves_the_venue_listing_too() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "fake-exchange", "--exchange", "bybit-linear"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert " serving on ws://" in process.stdout.readline()
        line = process.stdout.readline()
        assert "fake bybit-linear instruments on http://" in line, line
        url = line.split(" instruments on ")[1].strip()
        with urllib.request.urlopen(url, timeout=10) as response:
            page = orjson.loads(response.read())
        assert len(page["result"]["list"]) == 1000 and page["result"]["nextPageCursor"]
    finally:
        process.terminate()
        process.wait(10)
