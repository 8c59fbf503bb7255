"""BitMEX liquidation table: an order counts once, XBT is BTC, inverse USD contracts."""

from __future__ import annotations

import orjson
import pytest

from stream.collectors.bitmex import FEEDS, XbtUsdRate
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from stream.simulators import simulator_for
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
    assert BITMEX.ping_text == "ping" and simulator_for(BITMEX).reply("ping") == ["pong"]
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


def rest_instruments() -> dict[str, Instrument]:
    assert BITMEX.instruments_from_rest is not None
    return BITMEX.instruments_from_rest(orjson.loads(fixture("bitmex", "rest_instruments.json")))


def test_instruments_from_rest() -> None:
    got = rest_instruments()
    assert got == {
        "XBTUSD": Instrument("XBTUSD", "BTC", "USD", "inverse", 1.0),
        "XBTUSDT": Instrument("XBTUSDT", "BTC", "USDT", "linear", pytest.approx(1e-6)),
        # Quanto: 100 XBt (1e-6 XBT) per contract per USD of price, settled in XBT.
        "ETHUSD": Instrument("ETHUSD", "ETH", "XBT", "linear", pytest.approx(1e-6)),
    }  # ETHXBT (a linear contract priced in XBT) is left out


def test_quanto_is_valued_at_the_xbt_index() -> None:
    """ETHUSD: 1000 contracts x 0.000001 XBT per $1 x 2412.35 = 2.41235 XBT; at .BXBT 97000
    that is 233997.95 USD, and 233997.95 / 2412.35 = 97 ETH."""
    parser = XbtUsdRate()
    instruments = rest_instruments()
    rate = parser(fixture("bitmex", "instrument_bxbt_partial.json"), instruments, RECEIVED_TS)
    assert rate.events == [] and rate.rejects == []
    assert parser.xbt_usd == 97000
    parsed = parser(fixture("bitmex", "quanto_ethusd_insert.json"), instruments, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    assert_event(
        event,
        id="3f9e2c1a-7b4d-4e8f-9a2b-6c5d4e3f2a1b",
        exchange="bitmex",
        symbol="ETHUSD",
        coin="ETH",
        quote="USD",
        contract_type="linear",
        side="long",  # Sell closes a long
        price=2412.35,
        quantity=97.0,
        notional_usd=233997.95,
        ts=RECEIVED_TS,
    )
    # Each new lastPrice replaces the rate: 1000 x 1e-6 x 2412.35 x 97250.5 = 234602.243675.
    parser(fixture("bitmex", "instrument_bxbt_update.json"), instruments, RECEIVED_TS)
    text = fixture("bitmex", "quanto_ethusd_insert.json").replace("3f9e2c1a", "4f9e2c1a")
    (later,) = parser(text, instruments, RECEIVED_TS).events
    assert_event(later, notional_usd=234602.243675, quantity=234602.243675 / 2412.35)


def test_quanto_before_any_rate_is_dead_lettered() -> None:
    parsed = BITMEX.parse(fixture("bitmex", "quanto_ethusd_insert.json"), rest_instruments(), 1)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == ["xbt_usd_rate_unknown"]
    assert "ETHUSD" in parsed.rejects[0].detail


def test_bad_rate_is_rejected_and_the_old_rate_kept() -> None:
    parser = XbtUsdRate()
    parser(fixture("bitmex", "instrument_bxbt_partial.json"), {}, RECEIVED_TS)
    bad = '{"table":"instrument","action":"update","data":[{"symbol":".BXBT","lastPrice":"x"}]}'
    assert [r.reason for r in parser(bad, {}, RECEIVED_TS).rejects] == ["invalid_number"]
    assert parser.xbt_usd == 97000
    other = '{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD","lastPrice":1}]}'
    assert parser(other, {}, RECEIVED_TS).rejects == [] and parser.xbt_usd == 97000


def test_subscribes_to_the_xbt_index_with_the_liquidations() -> None:
    assert BITMEX.url == "wss://ws.bitmex.com/realtime?subscribe=liquidation,instrument:.BXBT"
    assert BITMEX.stateful_parse is XbtUsdRate
