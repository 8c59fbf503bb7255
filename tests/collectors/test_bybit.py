"""Bybit v5 allLiquidation frames: position side, linear coins, inverse USD contracts."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors.bybit import FEEDS, MAX_ARGS_CHARS, subscribe
from stream.collectors.instruments import bundled_snapshot
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, fixture

LINEAR, INVERSE = FEEDS
LINEAR_INSTRUMENTS = bundled_snapshot("bybit-linear")


def test_documented_frame_side_is_the_position() -> None:
    parsed = LINEAR.parse(fixture("bybit", "documented.json"), LINEAR_INSTRUMENTS, RECEIVED_TS)
    (event,) = parsed.events
    # S=Sell on Bybit = a SHORT position died. 20000 ROSE at 0.04499 = 899.8 USDT.
    assert_event(
        event,
        exchange="bybit",
        symbol="ROSEUSDT",
        coin="ROSE",
        quote="USDT",
        contract_type="linear",
        side="short",
        price=0.04499,
        quantity=20000.0,
        notional_usd=899.8,
        ts=1739502302929,
    )


def test_every_item_of_a_frame_and_1000_prefix() -> None:
    text = fixture("bybit", "multi_item_1000pepe.json")
    first, second = LINEAR.parse(text, LINEAR_INSTRUMENTS, RECEIVED_TS).events
    # Buy = long died. 500000 lots of 1000 PEPE = 5e8 PEPE at 0.0123/1000 = 1.23e-5;
    # notional 500000 * 0.0123 = 6150 USDT.
    assert_event(
        first,
        coin="PEPE",
        side="long",
        quantity=5e8,
        price=1.23e-5,
        notional_usd=6150.0,
        ts=1762290000100,
    )
    # Sell = short died. 1000 * 1000 = 1e6 PEPE; 1000 * 0.0124 = 12.4 USDT.
    assert_event(second, side="short", quantity=1e6, notional_usd=12.4, ts=1762290000300)
    assert first.id != second.id


def test_inverse_size_is_usd() -> None:
    (event,) = INVERSE.parse(fixture("bybit", "inverse_btcusd.json"), {}, RECEIVED_TS).events
    # 25000 contracts of 1 USD = 25000 USD; coins = 25000 / 100000 = 0.25 BTC.
    assert_event(
        event,
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="long",
        notional_usd=25000.0,
        quantity=0.25,
        price=100000.0,
    )


def test_acks_and_pongs_yield_nothing() -> None:
    for name in ("subscribe_ack.json", "pong.json"):
        parsed = LINEAR.parse(fixture("bybit", name), {}, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("v", "NaN", "quantity_not_finite"),
        ("v", "-5", "quantity_not_positive"),
        ("p", "0", "price_not_positive"),
        ("p", None, "invalid_number"),
        ("S", "Hold", "unexpected_shape"),
        ("s", "???", "unknown_symbol"),
    ],
)
def test_bad_items_are_rejected(field: str, value: object, reason: str) -> None:
    frame = orjson.loads(fixture("bybit", "documented.json"))
    frame["data"][0][field] = value
    parsed = LINEAR.parse(orjson.dumps(frame).decode(), LINEAR_INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_subscribe_respects_the_args_limit() -> None:
    symbols = [f"COIN{n}USDT" for n in range(2_000)]
    messages = subscribe(symbols)
    assert len(messages) > 1
    topics = []
    for message in messages:
        decoded = orjson.loads(message)
        assert decoded["op"] == "subscribe"
        assert len(orjson.dumps(decoded["args"])) <= MAX_ARGS_CHARS
        topics.extend(decoded["args"])
    assert topics == [f"allLiquidation.{s}" for s in symbols]
    assert LINEAR.needs_symbols and LINEAR.url == "wss://stream.bybit.com/v5/public/linear"


def test_heartbeat_and_acks_of_the_fake() -> None:
    assert LINEAR.ping_text is not None and orjson.loads(LINEAR.ping_text)["op"] == "ping"
    (pong,) = LINEAR.fake_reply(LINEAR.ping_text)
    assert orjson.loads(pong)["ret_msg"] == "pong"


def test_instruments_from_rest() -> None:
    payload = {
        "result": {
            "category": "linear",
            "list": [
                {
                    "symbol": "1000PEPEUSDT",
                    "baseCoin": "1000PEPE",
                    "quoteCoin": "USDT",
                    "contractType": "LinearPerpetual",
                },
                {
                    "symbol": "BTCUSD",
                    "baseCoin": "BTC",
                    "quoteCoin": "USD",
                    "contractType": "InversePerpetual",
                },
            ],
        }
    }
    assert LINEAR.instruments_from_rest is not None
    got = LINEAR.instruments_from_rest(payload)
    assert (got["1000PEPEUSDT"].coin, got["1000PEPEUSDT"].units) == ("PEPE", 1000)
    assert got["BTCUSD"].contract_type == "inverse"


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(LINEAR_INSTRUMENTS) - 1),
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=2e5),  # notional within the schema's bound
    coins=st.floats(min_value=1e-3, max_value=5e3),
)
def test_render_round_trip(index: int, side: str, price: float, coins: float) -> None:
    instrument = list(LINEAR_INSTRUMENTS.values())[index]
    assert LINEAR.render is not None
    text = LINEAR.render(instrument, side, price, coins, 1_762_290_000_000, 1)
    (event,) = LINEAR.parse(text, LINEAR_INSTRUMENTS, RECEIVED_TS).events
    assert (event.side, event.coin) == (side, instrument.coin)
    assert event.quantity == pytest.approx(coins, rel=1e-9)
    assert event.notional_usd == pytest.approx(price * coins, rel=1e-9)
