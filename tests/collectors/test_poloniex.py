"""Poloniex v3 futures liquidation_orders frames: position side, contracts of ctVal coins."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from stream.collectors import poloniex
from stream.collectors.connection import FeedConnection
from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.registry import FEEDS as REGISTERED
from stream.collectors.subscriptions import assign, batches
from stream.collectors.venue import Instrument
from stream.fake_exchange import FakeExchange
from stream.simulators import simulator_for
from stream.simulators.poloniex import PONG, FakeSession
from tests.collectors.test_shells import TOPICS, RecordingPublisher
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, assert_round_trip, fixture

(FEED,) = poloniex.FEEDS
SNAPSHOT = bundled_snapshot("poloniex")  # BTC_USDT_PERP: ctVal 0.001 BTC, as documented
# and a symbol the REST answer adds (rest_all_instruments.json: ctVal 0.01 ETH)
INSTRUMENTS = {
    **SNAPSHOT,
    "ETH_USDT_PERP": Instrument("ETH_USDT_PERP", "ETH", "USDT", "linear", 0.01),
}


def test_documented_frame_one_way_mode() -> None:
    parsed = FEED.parse(fixture("poloniex", "documented.json"), INSTRUMENTS, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # posSide BOTH: the order side decides; a forced BUY closes a short. 1 contract of
    # 0.001 BTC = 0.001 BTC at the bankruptcy price 94120.8368032: 94.1208368032 USDT.
    assert_event(
        event,
        exchange="poloniex",
        symbol="BTC_USDT_PERP",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="short",
        price=94120.8368032,
        quantity=0.001,
        notional_usd=94.1208368032,
        ts=1739367328421,
        received_ts=RECEIVED_TS,
    )


def test_hedge_mode_position_sides() -> None:
    text = fixture("poloniex", "hedge_mode_two_items.json")
    eth, btc = FEED.parse(text, INSTRUMENTS, RECEIVED_TS).events
    # posSide LONG (closed by a SELL): 25 contracts of 0.01 ETH = 0.25 ETH at 3120.5 = 780.125.
    assert_event(
        eth,
        symbol="ETH_USDT_PERP",
        coin="ETH",
        side="long",
        quantity=0.25,
        price=3120.5,
        notional_usd=780.125,
        ts=1762290000100,
    )
    # posSide SHORT: 340 contracts of 0.001 BTC = 0.34 BTC at 101250.5 = 34425.17 USDT.
    assert_event(btc, side="short", quantity=0.34, notional_usd=34425.17, ts=1762290000200)
    assert eth.id != btc.id


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("posSide", "SHORT", "unexpected_shape"),  # a SHORT closed by a SELL: contradictory
        ("posSide", "NET", "unexpected_shape"),
        ("side", ["BUY"], "unexpected_shape"),
        ("sz", "NaN", "quantity_not_finite"),
        ("sz", None, "invalid_number"),
        ("bkPx", "0", "price_not_positive"),
        ("s", "DOGE_USDT_PERP", "unknown_symbol"),
        ("s", {"a": 1}, "unexpected_shape"),
        ("uTime", "later", "ts_invalid"),
    ],
)
def test_bad_items_are_rejected(field: str, value: object, reason: str) -> None:
    frame = orjson.loads(fixture("poloniex", "hedge_mode_two_items.json"))
    frame["data"] = frame["data"][:1]
    frame["data"][0][field] = value
    parsed = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_answers_are_quiet_and_errors_are_dead_lettered() -> None:
    for name in ("subscribe_ack.json", "pong.json"):
        parsed = FEED.parse(fixture("poloniex", name), INSTRUMENTS, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []
    error = FEED.parse('{"event":"error","message":"invalid symbol"}', {}, RECEIVED_TS)
    assert [r.reason for r in error.rejects] == ["venue_error"]
    other = FEED.parse('{"channel":"trades","data":[]}', {}, RECEIVED_TS)
    assert [r.reason for r in other.rejects] == ["unexpected_shape"]


def test_subscriptions_and_answers() -> None:
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    assert per_symbol.limits.topics_per_message == 10
    assert per_symbol.topic("BTC_USDT_PERP") == "BTC_USDT_PERP"
    assert orjson.loads(per_symbol.request("subscribe", ["BTC_USDT_PERP"], "3")) == {
        "event": "subscribe",
        "channel": ["liquidation_orders"],
        "symbols": ["BTC_USDT_PERP"],
    }
    ack = per_symbol.read_reply(fixture("poloniex", "subscribe_ack.json"))
    assert ack is not None and ack.ok and ack.topics == ("BTC_USDT_PERP",)
    refused = per_symbol.read_reply('{"event":"error","message":"invalid symbol"}')
    assert refused is not None and not refused.ok and refused.reason == "invalid symbol"
    assert per_symbol.read_reply(fixture("poloniex", "pong.json")) is None
    assert per_symbol.read_reply(fixture("poloniex", "documented.json")) is None
    messages = FEED.subscribe([f"C{n:02d}_USDT_PERP" for n in range(25)])
    assert [len(orjson.loads(m)["symbols"]) for m in messages] == [10, 10, 5]


def test_heartbeat_is_the_clients_ping() -> None:
    assert FEED.ping_text == '{"event":"ping"}' and FEED.ping_interval_s < 30
    assert simulator_for(FEED).reply(FEED.ping_text) == ['{"event":"pong"}']
    assert simulator_for(FEED).heartbeat() is None  # Poloniex never pings


def test_fake_poloniex_enforces_its_rules() -> None:
    session = FakeSession(frozenset({"NOPE_USDT_PERP"}))
    (answer,), new = session.reply(poloniex.request("subscribe", ["BTC_USDT_PERP"], ""))
    assert new == ["BTC_USDT_PERP"] and orjson.loads(answer)["symbols"] == ["BTC_USDT_PERP"]
    batch = ["ETH_USDT_PERP", "NOPE_USDT_PERP"]
    (answer,), new = session.reply(poloniex.request("subscribe", batch, ""))
    assert new == [] and orjson.loads(answer)["event"] == "error"  # none of the batch
    assert session.wants(fixture("poloniex", "documented.json"))
    (answer,), _ = session.reply('{"event":"subscribe","channel":["trades"],"symbols":["X"]}')
    assert orjson.loads(answer)["event"] == "error"
    flood = FakeSession()
    answers = [flood.reply(poloniex.PING)[0][0] for _ in range(501)]
    assert set(answers[:500]) == {PONG}
    assert orjson.loads(answers[500])["message"] == "too many requests"


def test_instruments_from_rest() -> None:
    assert FEED.instruments_from_rest is not None
    payload = orjson.loads(fixture("poloniex", "rest_all_instruments.json"))
    got = FEED.instruments_from_rest(payload)
    assert set(got) == {"BTC_USDT_PERP", "ETH_USDT_PERP"}  # the CLOSED one is not listed
    assert (got["BTC_USDT_PERP"].contract_size, got["ETH_USDT_PERP"].contract_size) == (
        0.001,
        0.01,
    )
    assert got["BTC_USDT_PERP"].quote == "USDT"
    with pytest.raises(ValueError, match="allInstruments"):
        FEED.instruments_from_rest({"code": 400, "msg": "bad"})


def test_feed_declares_poloniex_endpoints() -> None:
    assert REGISTERED["poloniex"] is FEED
    assert FEED.url == "wss://ws.poloniex.com/ws/v3/public"
    assert FEED.instruments_url == "https://api.poloniex.com/v3/market/allInstruments"
    assert FEED.needs_symbols and FEED.lower_bound


@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
@pytest.mark.parametrize("side", ["long", "short"])
@pytest.mark.parametrize("seq", [1, 2])  # one-way (posSide BOTH) and hedge mode frames
def test_render_round_trip(symbol: str, side: str, seq: int) -> None:
    assert_round_trip(FEED, INSTRUMENTS, symbol, side, 2.5, 1234.5, 1762290000000, seq)


def test_a_full_listing_goes_on_one_connection_in_messages_of_10() -> None:
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    symbols = [f"C{n:03d}_USDT_PERP" for n in range(125)]
    shards, left_out = assign([], symbols, per_symbol.limits)
    assert left_out == [] and len(shards) == 1  # no per-connection cap is documented
    assert [len(b) for b in batches(shards[0], per_symbol.limits)] == [10] * 12 + [5]


async def test_every_symbol_live_and_a_refused_one_costs_only_itself(tmp_path: Path) -> None:
    """25 open symbols from a local allInstruments answer, subscribed 10 to a message on one
    connection; the venue refuses one symbol (an error naming none), so its batch is refused,
    each of that batch is retried alone, and only the unknown one stays out with its reason."""
    rows = [
        {"symbol": f"C{n:02d}_USDT_PERP", "bCcy": f"C{n:02d}", "qCcy": "USDT", "ctVal": "0.1"}
        | {"ctType": "LINEAR", "status": "OPEN"}
        for n in range(25)
    ]

    async def all_instruments(request: web.Request) -> web.Response:
        return web.json_response({"code": 200, "msg": "Success", "data": rows})

    app = web.Application()
    app.router.add_get("/v3/market/allInstruments", all_instruments)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v3/market/allInstruments"
    book = InstrumentBook(FEED, tmp_path, url=url)
    refused = "C13_USDT_PERP"

    def one_liquidation(symbol: str) -> str | None:
        if symbol not in book:
            return None
        return simulator_for(FEED).render(book[symbol], "long", 4.0, 3.0, 1_762_290_000_000, 2)

    fake = FakeExchange(FEED, [], unknown_topics={refused}, frame_on_subscribe=one_liquidation)
    publisher = RecordingPublisher()
    pipeline = FeedPipeline(FEED, book, publisher, TOPICS, CollectorMetrics())  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())

    def live() -> set[str]:
        return {event["symbol"] for event in publisher.values(TOPICS.liquidations)}

    def rejected() -> list[dict]:
        records = [s for s in publisher.values(TOPICS.status) if s["state"] == "coverage"]
        return records[-1]["rejected"] if records else []

    try:
        wanted = {row["symbol"] for row in rows} - {refused}
        async with asyncio.timeout(60):
            while not (wanted <= live() and rejected()):
                await asyncio.sleep(0.05)
        assert refused not in live() and fake.connections == 1
        assert rejected() == [{"topic": refused, "reason": f"invalid symbol: {refused}"}]
        subscribes = [orjson.loads(m) for m in fake.client_messages if '"subscribe"' in m]
        assert max(len(m["symbols"]) for m in subscribes) == 10
        assert [m["symbols"] for m in subscribes if refused in m["symbols"]][-1] == [refused]
    finally:
        connection.stop.set()
        await task
        await fake.stop()
        await runner.cleanup()
