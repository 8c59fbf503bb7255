"""Deribit liquidation-flagged trades: maker/taker, MT as two events, USD vs coin amounts."""

from __future__ import annotations

import orjson
import pytest

from stream.collectors.deribit import FEEDS, instrument_of
from stream.collectors.instruments import bundled_snapshot
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
    assert "trades.future.BTC.100ms" in second["params"]["channels"]


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
    assert instrument_of("ETH-27DEC25").contract_type == "inverse"
    assert (
        instrument_of("SOL_USDC-PERPETUAL").coin,
        instrument_of("SOL_USDC-PERPETUAL").quote,
    ) == ("SOL", "USDC")


@pytest.mark.parametrize("symbol", sorted(bundled_snapshot("deribit")))
def test_render_round_trip(symbol: str) -> None:
    instrument = bundled_snapshot("deribit")[symbol]
    assert DERIBIT.render is not None
    text = DERIBIT.render(instrument, "long", 3000.5, 1.75, 1_762_290_000_000, 7)
    (event,) = DERIBIT.parse(text, {}, RECEIVED_TS).events
    assert event.side == "long" and event.coin == instrument.coin
    assert event.quantity == pytest.approx(1.75, rel=1e-9)
    assert event.notional_usd == pytest.approx(1.75 * 3000.5, rel=1e-9)
