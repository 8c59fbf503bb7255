"""The shells' reconnect, resubscribe and listing paths, against the fakes.

- An instrument answer that is JSON but not the venue's shape (rows that are not objects) is a
  failed refresh: the listing is kept and the feed subscribes what it has, and a frame of an
  unknown market (which asks for a refresh) is an `unknown_symbol` reject, not an internal
  error raised out of the refresh.
- A connection the listing leaves without topics closes (`no_topics`, no gap), the feed still
  counts as connected, and the connection opens again when a later listing gives it topics.
- A topic the venue refused stays reported as refused across a reconnect (no coverage record
  loses it) and the new connection tries it once more alone, costing no other topic.
- A listing that cannot be cached (the data directory unwritable) is still the listing: its
  listeners (the connections) hear of it, and later refreshes compare against it.
- A symbol delisted while its connection is down is not subscribed again on reconnecting, one
  listed meanwhile is, and the coverage record counts the new listing.
- A feed whose run crashed (a connection loop ended by a bug) and is run again by its
  supervisor reports the outage as a gap, from when its connection went down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import orjson
from aiohttp import web

from stream.collectors import lighter
from stream.collectors.binance import FEEDS as BINANCE
from stream.collectors.bybit import FEEDS as BYBIT
from stream.collectors.connection import FeedConnection
from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.venue import Instrument
from stream.fake_exchange import FakeExchange, Script, generated_frames
from stream.fake_rest import FakeRest, bybit_row, bybit_rows
from stream.simulators import simulator_for
from tests.collectors.test_shells import TOPICS, RecordingPublisher, until

(LIGHTER,) = lighter.FEEDS


async def answering(body: object | Callable[[], object]) -> tuple[web.AppRunner, str]:
    """A local instruments endpoint answering `body` (or what `body()` gives now), 200, JSON."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body() if callable(body) else body)

    app = web.Application()
    app.router.add_get("/api/v1/orderBookDetails", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/orderBookDetails"


async def test_a_malformed_listing_is_a_failed_refresh_and_the_feed_subscribes_what_it_has(
    tmp_path: Path,
) -> None:
    # Lighter's shape, but its rows are numbers, not market objects
    runner, url = await answering({"code": 200, "order_book_details": [1, 2]})
    book = InstrumentBook(LIGHTER, tmp_path, url=url)
    bundled = set(bundled_snapshot("lighter"))
    assert await book.refresh(force=True) is False
    assert set(book.symbols()) == bundled
    fake = FakeExchange(LIGHTER, [])
    metrics = CollectorMetrics()
    publisher = RecordingPublisher()
    pipeline = FeedPipeline(LIGHTER, book, publisher, TOPICS, metrics)  # type: ignore[arg-type]
    pipeline.book.min_refresh_interval_s = 0.0  # the unknown market below may ask at once
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())
    try:
        wanted = {lighter.topic(symbol) for symbol in bundled}
        await until(lambda: fake.subscribed_topics() == wanted, "the bundled markets subscribed")
        assert not task.done()  # the feed runs: the malformed answer did not end it
        # a liquidation of a market the listing lacks: one refresh (malformed again), then
        # the frame is dead-lettered as what it is
        unknown = Instrument("NEW:99", "NEW", "USD", "linear")
        frame = simulator_for(LIGHTER).render(unknown, "long", 2.0, 1.0, 1_762_290_000_000, 1)
        assert await pipeline.on_frame(frame, 1_762_290_000_100) == []
        dead = publisher.values(TOPICS.deadletter)
        assert [d["reason"] for d in dead] == ["unknown_symbol"]
        assert metrics.internal_errors.labels(LIGHTER.name)._value.get() == 0
    finally:
        connection.stop.set()
        await task
        await fake.stop()
        await runner.cleanup()


def market(n: int) -> dict:
    return {"symbol": f"C{n}", "market_id": n, "market_type": "perp", "status": "active"}


async def test_a_connection_left_without_topics_closes_and_opens_again_when_given_some(
    tmp_path: Path,
) -> None:
    """Lighter, 100 markets per connection: 101 markets open two connections; delisting the
    one market of the second closes it on purpose (the first carries on and the feed counts
    as connected); a market listed later fills it again and it reconnects, with no gap."""
    markets = [market(n) for n in range(101)]
    runner, url = await answering(lambda: {"code": 200, "order_book_details": markets})
    book = InstrumentBook(LIGHTER, tmp_path, url=url)
    fake = FakeExchange(LIGHTER, [])
    publisher = RecordingPublisher()
    metrics = CollectorMetrics()
    pipeline = FeedPipeline(LIGHTER, book, publisher, TOPICS, metrics)  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())

    def statuses(state: str) -> list[dict]:
        return [s for s in publisher.values(TOPICS.status) if s["state"] == state]

    def coverage() -> dict:
        records = statuses("coverage")
        return records[-1] if records else {}

    def gauge() -> float:
        return float(metrics.connected.labels(LIGHTER.name)._value.get())

    try:
        await until(lambda: len(fake.subscribed_topics()) == 101, "101 markets subscribed")
        assert len(fake.sessions) == 2 and len(connection.shards) == 2
        (alone,) = connection.shards[1].topics
        await until(lambda: gauge() == 1, "connected")

        markets = [m for m in markets if f"trade/{m['market_id']}" != alone]
        assert len(markets) == 100
        assert await book.refresh(force=True)
        await until(
            lambda: any(
                s.get("connection") == 1 and s["reason"] == "no_topics"
                for s in statuses("disconnected")
            ),
            "the emptied connection closed on purpose",
        )
        await until(lambda: len(fake.sessions) == 1, "one connection left at the venue")
        await until(lambda: gauge() == 1, "the feed counts as connected without it")
        await until(lambda: coverage().get("instruments_subscribed") == 100, "coverage 100")
        assert coverage()["instruments_listed"] == 100 and coverage()["rejected"] == []
        connection._heartbeat()
        (*_, heartbeat) = statuses("heartbeat")
        assert heartbeat["connected"] is True
        assert heartbeat["connections"] == heartbeat["connections_up"] == 1

        markets = [*markets, market(200)]
        assert await book.refresh(force=True)
        await until(lambda: "trade/200" in fake.subscribed_topics(), "the new market subscribed")
        assert len(fake.sessions) == 2  # the second connection, opened again
        assert connection.shards[1].topics == {"trade/200"}
        await until(lambda: coverage().get("instruments_subscribed") == 101, "coverage 101")
        await until(lambda: gauge() == 1, "connected again")
        assert [s for s in statuses("gap") if s.get("connection") == 1] == []
    finally:
        connection.stop.set()
        await task
        await fake.stop()
        await runner.cleanup()


async def test_a_refused_topic_stays_refused_across_a_reconnect_and_is_retried_alone() -> None:
    feed = BYBIT[0]
    refused = "allLiquidation.DOGEUSDT"
    fake = FakeExchange(feed, [], unknown_topics={refused})
    book = InstrumentBook(feed, url="")
    publisher = RecordingPublisher()
    metrics = CollectorMetrics()
    pipeline = FeedPipeline(feed, book, publisher, TOPICS, metrics)  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())
    wanted = {f"allLiquidation.{s}" for s in book.symbols()} - {refused}
    reason = f"error:handler not found,topic:{refused}"

    def coverages() -> list[dict]:
        return [s for s in publisher.values(TOPICS.status) if s["state"] == "coverage"]

    def rejects() -> float:
        return float(metrics.subscription_rejects.labels(feed.name)._value.get())

    try:
        await until(lambda: fake.subscribed_topics() == wanted, "all but the refused topic")
        await until(lambda: bool(coverages() and coverages()[-1]["rejected"]), "the refusal")
        assert rejects() == 2  # in its batch, then alone
        first_refusal = len(coverages()) - 1
        sent_before = len(fake.client_messages)

        for ws in list(fake.sessions):  # the venue drops the connection
            await ws.close()
        await until(lambda: fake.connections == 2, "reconnected")
        await until(lambda: fake.subscribed_topics() == wanted, "resubscribed")
        await until(lambda: rejects() == 3, "refused once more, alone")
        await until(
            lambda: coverages()[-1]["instruments_subscribed"] == len(wanted), "coverage again"
        )
        assert all(
            c["rejected"] == [{"topic": refused, "reason": reason}]
            for c in coverages()[first_refusal:]
        )
        requests = [
            orjson.loads(m) for m in fake.client_messages[sent_before:] if '"subscribe"' in m
        ]
        assert [r["args"] for r in requests if refused in r["args"]] == [[refused]]
    finally:
        connection.stop.set()
        await task
        await fake.stop()


class FailingOnce(RecordingPublisher):
    """A publisher with a bug: the first `disconnected` status raises."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def submit(self, topic: str, key: str, value: bytes) -> bool:
        if not self.failed and topic == TOPICS.status and b'"disconnected"' in value:
            self.failed = True
            raise RuntimeError("a bug while publishing a status")
        return super().submit(topic, key, value)


async def test_an_outage_across_a_crashed_run_is_reported_as_a_gap() -> None:
    feed = BINANCE[0]
    frames = list(islice(generated_frames(feed, seed=5), 4))
    fake = FakeExchange(feed, frames, interval_s=0.01, script=Script(drop_after=[2]))
    publisher = FailingOnce()
    book = InstrumentBook(feed, url="")
    pipeline = FeedPipeline(feed, book, publisher, TOPICS, CollectorMetrics())  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)

    def statuses(state: str) -> list[dict]:
        return [s for s in publisher.values(TOPICS.status) if s["state"] == state]

    try:
        try:  # the dropped connection's status raises: the run ends, as a bug would end it
            async with asyncio.timeout(30):
                await connection.run()
        except RuntimeError as exc:
            assert "publishing a status" in str(exc)
        assert publisher.failed
        assert [s["reason"] for s in statuses("disconnected")] == []  # the one that raised
        connection.stop = asyncio.Event()  # what the service's supervisor does
        task = asyncio.create_task(connection.run())
        await until(lambda: len(statuses("connected")) == 2, "connected again")
        await until(lambda: bool(statuses("gap")), "the outage reported")
        (gap,) = statuses("gap")
        assert statuses("connected")[0]["ts"] <= gap["gap_start"] <= gap["gap_end"]
        await until(lambda: len(publisher.values(TOPICS.liquidations)) == 4, "every frame")
        connection.stop.set()
        await task
    finally:
        connection.stop.set()
        await fake.stop()


async def test_a_listing_changed_while_disconnected_is_what_the_reconnect_subscribes(
    tmp_path: Path,
) -> None:
    feed = BYBIT[0]
    rest = FakeRest()
    rest.bybit["linear"] = bybit_rows(20, "linear")
    await rest.start()
    book = InstrumentBook(feed, tmp_path, url=rest.url(feed.name))
    fake = FakeExchange(feed, [])
    publisher = RecordingPublisher()
    pipeline = FeedPipeline(feed, book, publisher, TOPICS, CollectorMetrics())  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())

    def listed() -> set[str]:
        return {f"allLiquidation.{row['symbol']}" for row in rest.bybit["linear"]}

    def coverage() -> dict:
        records = [s for s in publisher.values(TOPICS.status) if s["state"] == "coverage"]
        return records[-1] if records else {}

    try:
        await until(lambda: fake.subscribed_topics() == listed(), "the listing subscribed")
        fake._stalled_until = float("inf")  # the venue refuses new connections for now
        for ws in list(fake.sessions):
            await ws.close()
        await until(lambda: not connection.shards[0].connected, "disconnected")
        gone = f"allLiquidation.{rest.bybit['linear'].pop(3)['symbol']}"
        rest.bybit["linear"].append(bybit_row("LATEUSDT", "LATE", "USDT", "linear"))
        assert await book.refresh(force=True)
        fake._stalled_until = 0.0
        await until(lambda: fake.connections == 2, "reconnected")
        await until(lambda: fake.subscribed_topics() == listed(), "the new listing subscribed")
        assert gone not in fake.subscribed_topics()
        sent_after = [m for m in fake.client_messages if gone in m]
        assert len(sent_after) == 1  # its one subscribe on the first connection, none since
        await until(lambda: coverage().get("instruments_subscribed") == 20, "coverage")
        assert coverage()["instruments_listed"] == 20 and coverage()["rejected"] == []
    finally:
        connection.stop.set()
        await task
        await fake.stop()
        await rest.stop()


async def test_a_listing_that_cannot_be_cached_still_reaches_the_connections(
    tmp_path: Path,
) -> None:
    feed = BYBIT[0]
    rest = FakeRest()
    rest.bybit["linear"] = bybit_rows(5, "linear")
    await rest.start()
    not_a_directory = tmp_path / "instruments"
    not_a_directory.write_text("a file where the cache directory should be")
    book = InstrumentBook(feed, not_a_directory, url=rest.url(feed.name))
    heard: list[list[str]] = []
    book.on_change.append(lambda: heard.append(book.symbols()))
    try:
        assert await book.refresh(force=True)
        assert heard == [sorted(row["symbol"] for row in rest.bybit["linear"])]
        rest.bybit["linear"].append(bybit_row("LATEUSDT", "LATE", "USDT", "linear"))
        assert await book.refresh(force=True)
        assert "LATEUSDT" in heard[-1] and len(heard) == 2
    finally:
        await rest.stop()
