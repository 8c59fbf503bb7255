"""The instrument lifecycle of every per-instrument feed, against fakes that enforce the venue.

For Bybit (linear, inverse), Kraken, dYdX (more than 32 markets: several connections) and HTX
coin-margined futures (one topic per coin, several contracts each): the
first subscribe waits for the REST listing, every listed instrument goes live, a symbol listed
later is subscribed and a delisted one unsubscribed on the live connections after a refresh,
and the coverage record follows. No Kafka: the publisher only records.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from pathlib import Path

import orjson
import pytest

from stream.collectors.bybit import FEEDS as BYBIT
from stream.collectors.connection import FeedConnection
from stream.collectors.dydx import FEEDS as DYDX
from stream.collectors.htx import FEEDS as HTX
from stream.collectors.instruments import InstrumentBook
from stream.collectors.kraken import FEEDS as KRAKEN
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.venue import Feed
from stream.fake_exchange import FakeExchange
from stream.fake_rest import (
    HTX_DELIVERIES,
    FakeRest,
    bybit_row,
    bybit_rows,
    htx_futures_row,
    htx_futures_rows,
    kraken_row,
    kraken_rows,
    synthetic_bases,
)
from stream.simulators import simulator_for
from tests.collectors.test_shells import (
    TOPICS,
    RecordingPublisher,
    assert_follows_listing_change,
    run_collector,
    until,
)

SEQ = itertools.count(1)
HTX_FUTURES = HTX[2]


def listing(rest: FakeRest, feed: Feed, count: int) -> None:
    if feed.name.startswith("bybit"):
        category = feed.name.removeprefix("bybit-")
        rest.bybit[category] = bybit_rows(count, category)
    elif feed.name == "kraken":
        rest.kraken = kraken_rows(count)
    else:
        rest.dydx_markets = [f"{base}-USD" for base in synthetic_bases(count)]


def list_one_more(rest: FakeRest, feed: Feed) -> str:
    if feed.name == "bybit-linear":
        rest.bybit["linear"].append(bybit_row("LATEUSDT", "LATE", "USDT", "linear"))
        return "LATEUSDT"
    if feed.name == "bybit-inverse":
        rest.bybit["inverse"].append(bybit_row("LATEUSD", "LATE", "USD", "inverse"))
        return "LATEUSD"
    if feed.name == "kraken":
        rest.kraken.append(kraken_row("PF_LATEUSD"))
        return "PF_LATEUSD"
    rest.dydx_markets.append("LATE-USD")
    return "LATE-USD"


def delist_one(rest: FakeRest, feed: Feed) -> str:
    if feed.name.startswith("bybit"):
        return str(rest.bybit[feed.name.removeprefix("bybit-")].pop(1)["symbol"])
    if feed.name == "kraken":
        return str(rest.kraken.pop(1)["symbol"])
    return rest.dydx_markets.pop(1)


@pytest.mark.parametrize(
    ("feed", "count"),
    [(BYBIT[0], 60), (BYBIT[1], 25), (KRAKEN[0], 150), (DYDX[0], 70)],
    ids=lambda value: value.name if isinstance(value, Feed) else str(value),
)
async def test_every_listed_instrument_live_then_listing_changes(
    feed: Feed, count: int, tmp_path: Path
) -> None:
    assert feed.per_symbol is not None
    per_symbol, render = feed.per_symbol, simulator_for(feed).render
    rest = FakeRest()
    listing(rest, feed, count)
    await rest.start()
    book = InstrumentBook(feed, tmp_path, url=rest.url(feed.name))
    symbol_of = {per_symbol.topic(s): s for s in book.symbols()}  # bundled, refreshed below

    def one_liquidation(topic: str) -> str | None:
        symbol = symbol_of.get(topic) or next(
            (s for s in book.symbols() if per_symbol.topic(s) == topic), None
        )
        instrument = book.get(symbol) if symbol else None
        if instrument is None:
            return None
        return render(instrument, "long", 2.0, 0.5, 1_762_290_000_000, next(SEQ))

    fake = FakeExchange(feed, [], frame_on_subscribe=one_liquidation)
    collector = await run_collector(feed, book, fake)
    live, coverage, metrics = collector.live, collector.coverage, collector.metrics

    try:
        await until(lambda: set(rest_symbols(rest, feed)) <= live(), "every listed symbol live")
        assert book.refreshed.is_set()  # the first subscribe waited for the REST listing
        if feed.name == "dydx":
            assert fake.connections >= 3  # 70 markets, 32 per connection
            assert all(len(s.topics) <= 32 for s in fake.sessions.values())
        await until(
            lambda: coverage().get("instruments_subscribed") == count, "coverage: all subscribed"
        )
        assert coverage()["instruments_listed"] == count and coverage()["rejected"] == []
        assert metrics.connected.labels(feed.name)._value.get() == 1

        late = list_one_more(rest, feed)
        gone = delist_one(rest, feed)
        await assert_follows_listing_change(collector, book, fake, late, gone, count)
        assert coverage()["instruments_listed"] == count
        assert gone not in book.symbols() and gone in book  # rules kept for late frames
    finally:
        await collector.stop()
        await fake.stop()
        await rest.stop()


def rest_symbols(rest: FakeRest, feed: Feed) -> list[str]:
    if feed.name.startswith("bybit"):
        return [row["symbol"] for row in rest.bybit[feed.name.removeprefix("bybit-")]]
    if feed.name == "kraken":
        return [row["symbol"] for row in rest.kraken]
    return list(rest.dydx_markets)


async def test_first_subscribe_falls_back_to_the_snapshot_when_rest_is_silent(
    tmp_path: Path,
) -> None:
    feed = BYBIT[0]
    fake = FakeExchange(feed, [])
    book = InstrumentBook(feed, tmp_path, url="http://127.0.0.1:9/unreachable")
    publisher = RecordingPublisher()
    pipeline = FeedPipeline(feed, book, publisher, TOPICS, CollectorMetrics())  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), first_listing_timeout_s=0.5)
    task = asyncio.create_task(connection.run())
    try:
        bundled = {f"allLiquidation.{s}" for s in book.symbols()}
        await until(lambda: fake.subscribed_topics() == bundled, "bundled symbols subscribed")
    finally:
        connection.stop.set()
        await task
        await fake.stop()


async def test_a_refused_topic_costs_only_itself() -> None:
    feed = dataclasses.replace(BYBIT[0])
    refused = "allLiquidation.DOGEUSDT"
    fake = FakeExchange(feed, [], unknown_topics={refused})
    book = InstrumentBook(feed, url="")
    publisher = RecordingPublisher()
    metrics = CollectorMetrics()
    pipeline = FeedPipeline(feed, book, publisher, TOPICS, metrics)  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start())
    task = asyncio.create_task(connection.run())
    wanted = {f"allLiquidation.{s}" for s in book.symbols()} - {refused}
    try:
        await until(lambda: fake.subscribed_topics() == wanted, "all but the refused topic")

        def rejected() -> list[dict]:
            records = [s for s in publisher.values(TOPICS.status) if s["state"] == "coverage"]
            return records[-1]["rejected"] if records else []

        await until(lambda: bool(rejected()), "the refusal in the coverage record")
        assert rejected() == [
            {"topic": refused, "reason": f"error:handler not found,topic:{refused}"}
        ]
        assert metrics.subscription_rejects.labels(feed.name)._value.get() == 2  # batch, alone
        requests = [orjson.loads(m) for m in fake.client_messages if '"subscribe"' in m]
        assert [r["args"] for r in requests if refused in r["args"]][-1] == [refused]
    finally:
        connection.stop.set()
        await task
        await fake.stop()


async def test_htx_futures_follow_the_listing_one_topic_per_coin(tmp_path: Path) -> None:
    """HTX coin-margined futures: one topic per coin covers its three dated contracts. Every
    listed contract goes live, coverage counts contracts (N/N), a coin listed later is
    subscribed and a delisted one unsubscribed on the live connection, and a coin topic the
    venue refuses costs only its contracts (refused, retried alone, shown with HTX's reason)."""
    feed = HTX_FUTURES
    assert feed.per_symbol is not None
    per_symbol, render = feed.per_symbol, simulator_for(feed).render
    rest = FakeRest()
    rest.htx_futures = htx_futures_rows(12) + [
        htx_futures_row("NOPE", kind, date) for kind, date in HTX_DELIVERIES
    ]
    refused = "public.NOPE.liquidation_orders"
    await rest.start()
    book = InstrumentBook(feed, tmp_path, url=rest.url(feed.name))

    def every_contract_of(topic: str) -> str | None:
        """One frame per coin topic carrying one liquidation of each contract listed."""
        items = []
        for symbol in book.symbols():
            if per_symbol.topic(symbol) == topic:
                one = render(book[symbol], "long", 2.0, 5.0, 1_762_290_000_000, next(SEQ))
                items += orjson.loads(one)["data"]
        if not items:
            return None
        return orjson.dumps({"op": "notify", "topic": topic, "ts": 1, "data": items}).decode()

    fake = FakeExchange(feed, [], unknown_topics={refused}, frame_on_subscribe=every_contract_of)
    collector = await run_collector(feed, book, fake)
    live, coverage, metrics = collector.live, collector.coverage, collector.metrics

    def listed() -> set[str]:
        return {row["contract_code"] for row in rest.htx_futures if row["symbol"] != "NOPE"}

    try:
        await until(lambda: listed() <= live(), "every listed contract live")
        assert book.refreshed.is_set()
        assert fake.subscribed_topics() == {per_symbol.topic(s) for s in listed()}
        await until(lambda: bool(coverage().get("rejected")), "the refusal in coverage")
        await until(lambda: coverage().get("instruments_subscribed") == 36, "36 contracts")
        assert coverage()["instruments_listed"] == 39  # 13 coins x 3 contracts
        assert coverage()["rejected"] == [
            {"topic": refused, "reason": f"err-code 2011: invalid topic {refused}"}
        ]
        assert metrics.subscription_rejects.labels(feed.name)._value.get() == 2  # once, alone
        connections_before = fake.connections

        rest.htx_futures += [htx_futures_row("LATE", kind, date) for kind, date in HTX_DELIVERIES]
        gone = rest.htx_futures[0]["symbol"]
        rest.htx_futures = [row for row in rest.htx_futures if row["symbol"] != gone]
        assert await book.refresh(force=True)
        await until(lambda: {"LATE261204", "LATE261225"} <= live(), "the coin listed later")
        await until(
            lambda: f"public.{gone}.liquidation_orders" not in fake.subscribed_topics(),
            "the delisted coin unsubscribed",
        )
        assert fake.connections == connections_before  # without reconnecting
        await until(lambda: coverage().get("instruments_subscribed") == 36, "coverage after")
        assert coverage()["instruments_listed"] == 39
    finally:
        await collector.stop()
        await fake.stop()
        await rest.stop()
