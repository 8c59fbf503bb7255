"""Aster forceOrder frames (Binance's shape, Aster's exchange id and rules), worked by hand."""

from __future__ import annotations

import orjson
import pytest

from stream.collectors import aster, binance
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.registry import FEEDS as REGISTERED
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, assert_round_trip, fixture

(FEED,) = aster.FEEDS
INSTRUMENTS = bundled_snapshot("aster")


def test_documented_frame() -> None:
    parsed = FEED.parse(fixture("aster", "documented.json"), INSTRUMENTS, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # S=SELL: a forced sell closes a long. z=0.014 BTC at ap=9910: 0.014 * 9910 = 138.74 USDT.
    assert_event(
        event,
        exchange="aster",
        symbol="BTCUSDT",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=9910.0,
        quantity=0.014,
        notional_usd=138.74,
        ts=1568014460893,
        received_ts=RECEIVED_TS,
    )


def test_buy_is_a_short_and_size_is_the_filled_amount() -> None:
    parsed = FEED.parse(fixture("aster", "asterusdt_short_partial.json"), INSTRUMENTS, RECEIVED_TS)
    (event,) = parsed.events
    # S=BUY: a forced buy closes a short. z=3200 ASTER filled so far (not q=5000, not l=1200)
    # at the average ap=1.2150: 3200 * 1.215 = 3888 USDT.
    assert_event(
        event,
        exchange="aster",
        symbol="ASTERUSDT",
        coin="ASTER",
        side="short",
        price=1.215,
        quantity=3200.0,
        notional_usd=3888.0,
        ts=1762290000100,
    )


def test_combined_stream_wrapper_and_price_before_any_fill() -> None:
    parsed = FEED.parse(fixture("aster", "combined_stream.json"), INSTRUMENTS, RECEIVED_TS)
    (event,) = parsed.events
    # ap=0 (not filled yet): the order price p=3480.10 is used. 2.5 ETH * 3480.1 = 8700.25 USDT.
    assert_event(
        event, symbol="ETHUSDT", coin="ETH", side="long", price=3480.1, notional_usd=8700.25
    )


def test_same_order_on_aster_and_binance_are_different_events() -> None:
    """One parser, two venues: the exchange id is Aster's and so is the event id."""
    text = fixture("aster", "documented.json")
    (on_aster,) = FEED.parse(text, INSTRUMENTS, RECEIVED_TS).events
    (on_binance,) = binance.parse(text, {}, RECEIVED_TS).events
    assert (on_aster.exchange, on_binance.exchange) == ("aster", "binance")
    assert on_aster.id != on_binance.id
    assert on_aster.notional_usd == on_binance.notional_usd


def test_unlisted_symbol_follows_its_name_and_coin_margined_names_are_unknown() -> None:
    frame = orjson.loads(fixture("aster", "documented.json"))
    frame["o"]["s"] = "1000BONKUSDT"
    (event,) = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS).events
    # 0.014 lots of 1000 BONK = 14 BONK at 9910 / 1000 = 9.91 USDT each: 138.74 USDT.
    assert_event(event, coin="BONK", quantity=14.0, price=9.91, notional_usd=138.74)
    frame["o"]["s"] = "BTCUSD_PERP"  # Binance COIN-M's name: Aster lists no such contract
    parsed = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == [] and [r.reason for r in parsed.rejects] == ["unknown_symbol"]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("z", "NaN", "quantity_not_finite"),
        ("ap", "-1", "price_not_positive"),
        ("z", [1], "invalid_number"),
        ("S", "HOLD", "unexpected_shape"),
        ("S", {"x": 1}, "unexpected_shape"),
        ("s", 7, "unexpected_shape"),
    ],
)
def test_bad_items_are_rejected(field: str, value: object, reason: str) -> None:
    frame = orjson.loads(fixture("aster", "documented.json"))
    frame["o"][field] = value
    parsed = FEED.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_acks_yield_nothing_and_the_fake_answers_like_aster() -> None:
    parsed = FEED.parse(fixture("aster", "subscribe_ack.json"), INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == [] and parsed.rejects == []
    (answer,) = simulator_for(FEED).reply('{"method":"LIST_SUBSCRIPTIONS","id":3}')
    assert orjson.loads(answer) == {"result": ["!forceOrder@arr"], "id": 3}
    (answer,) = simulator_for(FEED).reply(
        '{"method":"SUBSCRIBE","params":["!forceOrder@arr"],"id":4}'
    )
    assert orjson.loads(answer) == {"result": None, "id": 4}
    assert simulator_for(FEED).reply("not json") == []


def test_feed_declares_aster_endpoints_and_rules() -> None:
    assert REGISTERED["aster"] is FEED
    assert FEED.url == "wss://fstream.asterdex.com/ws/!forceOrder@arr"
    assert FEED.subscribe(["BTCUSDT"]) == []  # the stream is in the path
    assert FEED.instruments_url == "https://fapi.asterdex.com/fapi/v1/exchangeInfo"
    assert FEED.lower_bound and FEED.max_connection_age_s is not None
    assert FEED.max_connection_age_s < 24 * 3600


def test_instruments_from_rest() -> None:
    assert FEED.instruments_from_rest is not None
    got = FEED.instruments_from_rest(orjson.loads(fixture("aster", "rest_exchange_info.json")))
    assert set(got) == {"BTCUSDT", "ASTERUSDT", "1000SHIBUSDT"}
    assert (got["1000SHIBUSDT"].coin, got["1000SHIBUSDT"].units) == ("SHIB", 1000)
    assert got["ASTERUSDT"].quote == "USDT" and got["ASTERUSDT"].contract_type == "linear"


@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
@pytest.mark.parametrize("side", ["long", "short"])
def test_render_round_trip(symbol: str, side: str) -> None:
    event = assert_round_trip(FEED, INSTRUMENTS, symbol, side, 2.5, 1234.5, 1762290000000, 3)
    assert event.exchange == "aster"
