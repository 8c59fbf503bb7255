"""Deribit liquidation-flagged trades: maker/taker, MT as two events, USD vs coin amounts."""

from __future__ import annotations

import orjson
import pytest

from stream.collectors.deribit import FEEDS, instrument_of, is_option
from stream.collectors.instruments import bundled_snapshot
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, fixture

(DERIBIT,) = FEEDS


def test_documented_maker_liquidation_and_plain_trades_ignored() -> None:
    parsed = DERIBIT.parse(fixture("deribit", "documented_maker.json"), {}, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events  # the second trade is not a liquidation
    # M = the maker died; the taker sold, so the maker bought: a SHORT died.
    # BTC-PERPETUAL amount is USD: 10 USD; coins = 10 / 8950.
    assert_event(
        event,
        id="48079254:M",
        exchange="deribit",
        symbol="BTC-PERPETUAL",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="short",
        price=8950.0,
        quantity=10 / 8950,
        notional_usd=10.0,
        ts=1590484156350,
    )


def test_mt_is_two_liquidations_and_linear_amount_is_coins() -> None:
    maker, taker = DERIBIT.parse(fixture("deribit", "both_and_linear.json"), {}, RECEIVED_TS).events
    # Taker bought: taker was short (T: a short died); maker sold: a long died.
    # BTC_USDC-PERPETUAL amount is coins: 0.25 BTC at 100000 = 25000 USDC each.
    assert_event(
        maker,
        id="USDC-1:M",
        side="long",
        quote="USDC",
        contract_type="linear",
        quantity=0.25,
        notional_usd=25_000.0,
    )
    assert_event(taker, id="USDC-1:T", side="short", quantity=0.25, notional_usd=25_000.0)


def test_heartbeat_is_answered_with_public_test() -> None:
    heartbeat = fixture("deribit", "heartbeat.json")
    reply = DERIBIT.answer(heartbeat)
    assert reply is not None and orjson.loads(reply)["method"] == "public/test"
    assert DERIBIT.answer('{"jsonrpc":"2.0","id":2,"result":[]}') is None
    parsed = DERIBIT.parse(heartbeat, {}, RECEIVED_TS)
    assert parsed.events == [] and parsed.rejects == []


def test_subscribe_sets_the_heartbeat_first() -> None:
    first, second = (orjson.loads(m) for m in DERIBIT.subscribe([]))
    assert first["method"] == "public/set_heartbeat" and first["params"]["interval"] >= 10
    assert second["method"] == "public/subscribe"
    # Futures and options of every documented currency.
    assert second["params"]["channels"] == [
        f"trades.{kind}.{currency}.100ms"
        for kind in ("future", "option")
        for currency in ("BTC", "ETH", "USDC", "USDT", "EURR")
    ]


def test_inverse_option_liquidation_is_valued_at_its_premium() -> None:
    parsed = DERIBIT.parse(fixture("deribit", "option_inverse_taker.json"), {}, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # T + sell: the taker sold and was liquidated: a long (call) died. 3 BTC of underlying
    # at a premium of 0.0075 BTC x index 8956.17 = 67.171275 USD per BTC; USD 201.513825.
    assert_event(
        event,
        id="48079289:T",
        exchange="deribit",
        symbol="BTC-27MAY20-9000-C",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="long",
        price=67.171275,
        quantity=3.0,
        notional_usd=201.513825,
        ts=1590484589306,
    )


def test_linear_option_premium_is_in_usdc() -> None:
    (event,) = DERIBIT.parse(fixture("deribit", "option_linear_maker.json"), {}, RECEIVED_TS).events
    # M + buy: the maker sold and was liquidated: a long died. 40 SOL at 12.5 USDC = 500 USD.
    assert_event(
        event,
        id="SOL_USDC-5504311:M",
        symbol="SOL_USDC-26DEC25-200-C",
        coin="SOL",
        quote="USDC",
        contract_type="linear",
        side="long",
        price=12.5,
        quantity=40.0,
        notional_usd=500.0,
    )


def test_usdt_is_collected_and_eurr_has_no_usd_value() -> None:
    parsed = DERIBIT.parse(fixture("deribit", "eurr_and_usdt.json"), {}, RECEIVED_TS)
    (event,) = parsed.events
    # ETH_USDT-PERPETUAL: coins; 2 ETH at 3500.5 = 7001 USDT; T + sell: a long died.
    assert_event(event, symbol="ETH_USDT-PERPETUAL", quote="USDT", side="long", notional_usd=7001.0)
    assert [r.reason for r in parsed.rejects] == ["quote_not_usd"]
    assert "BTC_EURR-PERPETUAL" in parsed.rejects[0].detail


def test_option_without_index_price_is_rejected() -> None:
    frame = orjson.loads(fixture("deribit", "option_inverse_taker.json"))
    del frame["params"]["data"][0]["index_price"]
    parsed = DERIBIT.parse(orjson.dumps(frame).decode(), {}, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == ["invalid_number"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"amount": -5}, "quantity_not_positive"),
        ({"price": "NaN"}, "price_not_finite"),
        ({"amount": None}, "invalid_number"),
        ({"liquidation": "X"}, "unexpected_shape"),
    ],
)
def test_bad_trades_are_rejected(change: dict, reason: str) -> None:
    frame = orjson.loads(fixture("deribit", "documented_maker.json"))
    frame["params"]["data"] = [{**frame["params"]["data"][0], **change}]
    parsed = DERIBIT.parse(orjson.dumps(frame).decode(), {}, RECEIVED_TS)
    assert [r.reason for r in parsed.rejects] == [reason]


def test_instrument_rules_from_names() -> None:
    assert is_option("BTC-27DEC25-100000-C") and is_option("SOL_USDC-26DEC25-200-P")
    assert not is_option("BTC-27DEC25") and not is_option("BTC-PERPETUAL")
    assert instrument_of("ETH-27DEC25").contract_type == "inverse"
    assert (
        instrument_of("SOL_USDC-PERPETUAL").coin,
        instrument_of("SOL_USDC-PERPETUAL").quote,
    ) == ("SOL", "USDC")


@pytest.mark.parametrize("symbol", sorted(bundled_snapshot("deribit")))
def test_render_round_trip(symbol: str) -> None:
    instrument = bundled_snapshot("deribit")[symbol]
    text = simulator_for(DERIBIT).render(instrument, "long", 3000.5, 1.75, 1_762_290_000_000, 7)
    (event,) = DERIBIT.parse(text, {}, RECEIVED_TS).events
    assert event.side == "long" and event.coin == instrument.coin
    assert event.quantity == pytest.approx(1.75, rel=1e-9)
    assert event.notional_usd == pytest.approx(1.75 * 3000.5, rel=1e-9)
