"""BitMEX liquidation table: an order counts once, XBT is BTC, inverse USD contracts."""

from __future__ import annotations

import pytest

from stream.collectors.bitmex import FEEDS
from stream.collectors.instruments import bundled_snapshot
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, fixture

(BITMEX,) = FEEDS
INSTRUMENTS = bundled_snapshot("bitmex")


def test_documented_insert() -> None:
    (event,) = BITMEX.parse(
        fixture("bitmex", "documented_insert.json"), INSTRUMENTS, RECEIVED_TS
    ).events
    # Buy = a forced buy = a short died. 314930 XBTUSD contracts of 1 USD = 314930 USD;
    # coins = 314930 / 13854.5 = 22.7312...; no venue time: the receive time.
    assert_event(
        event,
        id="98ae1dad-6a3b-51c4-14bd-e076919e9e30",
        exchange="bitmex",
        symbol="XBTUSD",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="short",
        price=13854.5,
        quantity=314930 / 13854.5,
        notional_usd=314930.0,
        ts=RECEIVED_TS,
    )


def test_updates_and_welcome_yield_nothing_partial_counts() -> None:
    for name in ("update.json", "welcome.json"):
        parsed = BITMEX.parse(fixture("bitmex", name), INSTRUMENTS, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []
    (event,) = BITMEX.parse(
        fixture("bitmex", "partial_linear.json"), INSTRUMENTS, RECEIVED_TS
    ).events
    # XBTUSDT: 250000 contracts of 0.000001 BTC = 0.25 BTC at 100000 = 25000 USDT; Sell = long.
    assert_event(
        event,
        side="long",
        contract_type="linear",
        quote="USDT",
        quantity=0.25,
        notional_usd=25_000.0,
    )


def test_text_heartbeat() -> None:
    assert BITMEX.ping_text == "ping" and BITMEX.fake_reply("ping") == ["pong"]
    parsed = BITMEX.parse("pong", INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == [] and parsed.rejects == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '{"table":"liquidation","action":"insert","data":[{"orderID":"a","symbol":"ETHUSD","side":"Buy","price":1,"leavesQty":1}]}',
            "unknown_symbol",
        ),
        (
            '{"table":"liquidation","action":"insert","data":[{"orderID":"a","symbol":"XBTUSD","side":"Buy","price":1,"leavesQty":-1}]}',
            "quantity_not_positive",
        ),
        (
            '{"table":"liquidation","action":"insert","data":[{"orderID":"a","symbol":"XBTUSD","side":"Up","price":1,"leavesQty":1}]}',
            "unexpected_shape",
        ),
        ('{"status":400,"error":"Unknown table: liquidatio"}', "venue_error"),
    ],
)
def test_bad_rows(text: str, reason: str) -> None:
    assert [r.reason for r in BITMEX.parse(text, INSTRUMENTS, RECEIVED_TS).rejects] == [reason]


def test_instruments_from_rest_skips_quanto() -> None:
    payload = [
        {
            "symbol": "XBTUSD",
            "underlying": "XBT",
            "quoteCurrency": "USD",
            "isInverse": True,
            "isQuanto": False,
        },
        {
            "symbol": "XBTUSDT",
            "underlying": "XBT",
            "quoteCurrency": "USDT",
            "isInverse": False,
            "isQuanto": False,
            "underlyingToPositionMultiplier": 1000000,
        },
        {
            "symbol": "ETHUSD",
            "underlying": "ETH",
            "quoteCurrency": "USD",
            "isInverse": False,
            "isQuanto": True,
        },
    ]
    assert BITMEX.instruments_from_rest is not None
    got = BITMEX.instruments_from_rest(payload)
    assert set(got) == {"XBTUSD", "XBTUSDT"}
    assert got["XBTUSDT"].contract_size == pytest.approx(1e-6)
    assert got["XBTUSD"].coin == "BTC"
