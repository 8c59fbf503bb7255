"""Lighter trade-channel frames: liquidation_trades only, taker side, values worked by hand."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from aiohttp import web

from stream.collectors import lighter
from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.registry import FEEDS as REGISTERED
from stream.collectors.subscriptions import assign, batches
from stream.collectors.venue import Instrument
from stream.fake_exchange import FakeExchange
from stream.simulators import simulator_for
from stream.simulators.lighter import FakeSession
from tests.collectors.test_shells import run_collector, until
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, assert_round_trip, fixture

(FEED,) = lighter.FEEDS
SNAPSHOT = bundled_snapshot("lighter")
# The bundled listing and markets only the venue's REST answer would add.
INSTRUMENTS = {
    **SNAPSHOT,
    "DOGE:3": Instrument("DOGE:3", "DOGE", "USD", "linear"),
    "1000PEPE:4": Instrument("1000PEPE:4", "PEPE", "USD", "linear", 1.0, 1000),
    "WIF:5": Instrument("WIF:5", "WIF", "USD", "linear"),
}


def test_captured_long_liquidation() -> None:
    parsed = FEED.parse(fixture("lighter", "captured_wif_long.json"), INSTRUMENTS, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # is_maker_ask false: the taker (the liquidated account) sold, and its position before was
    # +1172 WIF: a long. 1172 WIF at 0.24087 = 282.29964 USD (= usd_amount).
    assert_event(
        event,
        id="lighter:31787102386",
        exchange="lighter",
        symbol="WIF:5",
        coin="WIF",
        quote="USD",
        contract_type="linear",
        side="long",
        price=0.24087,
        quantity=1172.0,
        notional_usd=282.29964,
        ts=1790221085387,
        received_ts=RECEIVED_TS,
    )


def test_captured_short_liquidation() -> None:
    parsed = FEED.parse(fixture("lighter", "captured_doge_short.json"), INSTRUMENTS, RECEIVED_TS)
    (event,) = parsed.events
    # is_maker_ask true: the maker sold, the taker bought back -3349 DOGE: a short.
    # 3349 * 0.095169 = 318.720981 USD.
    assert_event(
        event,
        id="lighter:31795317844",
        symbol="DOGE:3",
        coin="DOGE",
        side="short",
        price=0.095169,
        quantity=3349.0,
        notional_usd=318.720981,
        ts=1790226477516,
    )


def test_subscribed_replay_gives_its_liquidations_not_its_trades() -> None:
    text = fixture("lighter", "captured_subscribed_eth_short.json")
    parsed = FEED.parse(text, INSTRUMENTS, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events  # the ordinary trade of `trades` is not a liquidation
    # is_maker_ask true: a short. 1.0034 ETH * 2769.77 = 2779.187218 USD.
    assert_event(
        event,
        id="lighter:882932008",
        symbol="ETH:0",
        coin="ETH",
        side="short",
        price=2769.77,
        quantity=1.0034,
        notional_usd=2779.187218,
        ts=1790008326252,
    )


def test_documented_frame_without_liquidations_is_quiet() -> None:
    text = fixture("lighter", "documented_trade_only.json")
    parsed = FEED.parse(text, INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == [] and parsed.rejects == []


def test_1000_lots_and_deleverage_items() -> None:
    frame = orjson.loads(fixture("lighter", "captured_wif_long.json"))
    item = frame["liquidation_trades"][0]
    pepe = {**item, "market_id": 4, "size": "250", "price": "0.012", "usd_amount": "3.0"}
    deleverage = {**item, "type": "deleverage"}
    frame.update(channel="trade:4", liquidation_trades=[pepe, deleverage])
    (event,) = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS).events
    # 250 lots of 1000 PEPE = 250,000 PEPE at 0.012 / 1000 = 1.2e-5 USD: 3 USD.
    assert_event(
        event, symbol="1000PEPE:4", coin="PEPE", quantity=250_000.0, price=1.2e-5, notional_usd=3.0
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("taker_position_size_before", "-1172.0", "side_inconsistent"),  # a short sold?
        ("is_maker_ask", "false", "unexpected_shape"),
        ("market_id", 999, "unknown_symbol"),
        ("market_id", True, "unexpected_shape"),
        ("size", "NaN", "quantity_not_finite"),
        ("price", None, "malformed_item"),
        ("usd_amount", "5000", "notional_usd_inconsistent"),
        ("timestamp", "yesterday", "ts_invalid"),
    ],
)
def test_bad_items_are_rejected(field: str, value: object, reason: str) -> None:
    frame = orjson.loads(fixture("lighter", "captured_wif_long.json"))
    frame["liquidation_trades"][0][field] = value
    parsed = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_bad_frames_are_rejected_and_answers_are_quiet() -> None:
    assert [r.reason for r in FEED.parse("[1]", INSTRUMENTS, RECEIVED_TS).rejects] == [
        "unexpected_shape"
    ]
    error = FEED.parse(fixture("lighter", "error_already_subscribed.json"), {}, RECEIVED_TS)
    assert [r.reason for r in error.rejects] == ["venue_error"]
    broken = '{"channel":"trade:5","liquidation_trades":{"a":1},"type":"update/trade"}'
    assert [r.reason for r in FEED.parse(broken, {}, RECEIVED_TS).rejects] == ["unexpected_shape"]
    for quiet in ('{"type":"connected","session_id":"x"}', '{"type":"pong"}'):
        parsed = FEED.parse(quiet, INSTRUMENTS, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []


def test_topics_requests_and_answers() -> None:
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    assert per_symbol.limits.topics_per_message == 1
    assert per_symbol.limits.topics_per_connection == 100
    assert per_symbol.limits.messages_per_second == 20.0
    assert per_symbol.topic("1000PEPE:4") == "trade/4"
    assert orjson.loads(per_symbol.request("subscribe", ["trade/4"], "7")) == {
        "type": "subscribe",
        "channel": "trade/4",
    }
    ack = per_symbol.read_reply(fixture("lighter", "captured_subscribed_eth_short.json"))
    assert ack is not None and ack.ok and ack.topics == ("trade/0",) and ack.op == "subscribe"
    dup = per_symbol.read_reply(fixture("lighter", "error_already_subscribed.json"))
    assert dup is not None and dup.ok  # what was asked for holds
    refused = per_symbol.read_reply('{"error":{"code":30012,"message":"invalid channel"}}')
    assert refused is not None and not refused.ok and refused.topics == ()
    assert refused.reason == "30012: invalid channel"
    assert per_symbol.read_reply(fixture("lighter", "captured_wif_long.json")) is None
    assert per_symbol.read_reply('{"type":"connected"}') is None


def test_fake_lighter_enforces_its_connection_rules() -> None:
    session = FakeSession(frozenset({"trade/999"}))
    accepted = []
    refusal = ""
    for market in range(120):
        (answer,), new = session.reply(lighter.request("subscribe", [f"trade/{market}"], ""))
        if "error" in orjson.loads(answer):
            refusal = orjson.loads(answer)["error"]["message"]
            break
        assert orjson.loads(answer)["type"] == "subscribed/trade"
        accepted += new
    assert len(accepted) == 100 and refusal == "too many subscriptions"
    session = FakeSession(frozenset({"trade/999"}))
    (answer,), new = session.reply(lighter.request("subscribe", ["trade/999"], ""))
    assert new == [] and orjson.loads(answer)["error"]["code"] == 30012
    session.reply(lighter.request("subscribe", ["trade/5"], ""))
    (answer,), new = session.reply(lighter.request("subscribe", ["trade/5"], ""))
    assert new == [] and orjson.loads(answer)["error"]["code"] == 30003
    assert session.wants(fixture("lighter", "captured_wif_long.json"))
    assert not session.wants(fixture("lighter", "captured_doge_short.json"))
    (answer,), _ = session.reply('{"type":"unsubscribe","channel":"trade/5"}')
    assert orjson.loads(answer)["type"] == "unsubscribed/trade" and session.topics == set()


def test_instruments_from_rest() -> None:
    assert FEED.instruments_from_rest is not None
    payload = orjson.loads(fixture("lighter", "rest_order_book_details.json"))
    got = FEED.instruments_from_rest(payload)
    assert set(got) == {"ETH:0", "1000PEPE:4"}  # inactive and spot markets left out
    assert (got["1000PEPE:4"].coin, got["1000PEPE:4"].units) == ("PEPE", 1000)
    assert got["ETH:0"].quote == "USD" and got["ETH:0"].contract_type == "linear"
    with pytest.raises(ValueError, match="orderBookDetails"):
        FEED.instruments_from_rest({"code": 29500, "message": "internal error"})


def test_feed_declares_lighter_endpoints() -> None:
    assert REGISTERED["lighter"] is FEED
    assert FEED.url == "wss://mainnet.zklighter.elliot.ai/stream"
    assert FEED.instruments_url == "https://mainnet.zklighter.elliot.ai/api/v1/orderBookDetails"
    assert FEED.needs_symbols and FEED.replays_on_subscribe and not FEED.lower_bound
    assert FEED.subscribe(["ETH:0", "WIF:5"]) == [
        '{"type":"subscribe","channel":"trade/0"}',
        '{"type":"subscribe","channel":"trade/5"}',
    ]


@pytest.mark.parametrize("symbol", sorted(SNAPSHOT))
@pytest.mark.parametrize("side", ["long", "short"])
def test_render_round_trip(symbol: str, side: str) -> None:
    event = assert_round_trip(FEED, INSTRUMENTS, symbol, side, 2.5, 1234.5, 1762290000000, 3)
    assert event.exchange == "lighter" and event.id.startswith("lighter:")


def test_fake_lighter_refuses_past_200_messages_a_minute() -> None:
    session = FakeSession()
    answers = [
        orjson.loads(session.reply(lighter.request("subscribe", [f"trade/{n % 90}"], ""))[0][0])
        for n in range(201)
    ]
    assert all("error" not in a or a["error"]["code"] == 30003 for a in answers[:200])
    assert answers[200]["error"]["code"] == 30009


def test_an_item_without_a_string_type_is_rejected_not_skipped() -> None:
    frame = orjson.loads(fixture("lighter", "captured_wif_long.json"))
    frame["liquidation_trades"][0]["type"] = None
    parsed = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == [] and [r.reason for r in parsed.rejects] == ["unexpected_shape"]


def test_a_full_listing_is_spread_over_connections_of_at_most_100_markets() -> None:
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    topics = [per_symbol.topic(f"COIN{n}:{n}") for n in range(150)]
    shards, left_out = assign([], topics, per_symbol.limits)
    assert left_out == [] and sorted(len(shard) for shard in shards) == [50, 100]
    assert set().union(*shards) == set(topics)
    # one channel per subscribe message, as the docs show it
    assert all(len(batch) == 1 for batch in batches(shards[0], per_symbol.limits))


async def _order_book_details(markets: list[dict]) -> tuple[web.AppRunner, str]:
    """A local `GET /api/v1/orderBookDetails` answering `markets` as Lighter's REST does."""

    async def details(request: web.Request) -> web.Response:
        return web.json_response({"code": 200, "order_book_details": markets})

    app = web.Application()
    app.router.add_get("/api/v1/orderBookDetails", details)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}/api/v1/orderBookDetails"


async def test_every_market_live_over_connections_of_100_and_a_refusal_costs_only_itself(
    tmp_path: Path,
) -> None:
    """150 active perpetuals from REST: two connections (at most 100 markets each, the fake
    refuses more), one liquidation per market once subscribed; the market the venue refuses
    is left out with its reason while every other one is live."""
    markets = [
        {"symbol": f"C{n}", "market_id": n, "market_type": "perp", "status": "active"}
        for n in range(150)
    ]
    runner, url = await _order_book_details(markets)
    book = InstrumentBook(FEED, tmp_path, url=url)

    def one_liquidation(channel: str) -> str | None:
        symbol = next((s for s in book.symbols() if FEED_TOPIC(s) == channel), None)
        if symbol is None:
            return None
        return simulator_for(FEED).render(
            book[symbol], "short", 3.0, 2.0, 1_762_290_000_000, int(lighter.market_id(symbol))
        )

    fake = FakeExchange(FEED, [], unknown_topics={"trade/7"}, frame_on_subscribe=one_liquidation)
    collector = await run_collector(FEED, book, fake)
    live, coverage = collector.live, collector.coverage

    try:
        wanted = {f"C{n}:{n}" for n in range(150)} - {"C7:7"}
        await until(lambda: wanted <= live(), "every market but the refused one live", 60.0)
        assert "C7:7" not in live()
        assert fake.connections == 2
        assert sorted(len(s.topics) for s in fake.sessions.values()) == [49, 100]
        await until(lambda: bool(coverage().get("rejected")), "the refusal in coverage", 60.0)
        assert coverage()["rejected"] == [
            {"topic": "trade/7", "reason": "30012: invalid channel: trade/7"}
        ]
        assert coverage()["instruments_listed"] == 150
    finally:
        await collector.stop()
        await fake.stop()
        await runner.cleanup()


def FEED_TOPIC(symbol: str) -> str:  # noqa: N802 - the feed's own topic function
    assert FEED.per_symbol is not None
    return FEED.per_symbol.topic(symbol)
