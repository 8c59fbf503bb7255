"""Binance USD-M and COIN-M forceOrder frames, with values worked out by hand."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors.binance import FEEDS, instrument_for
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Feed, Instrument
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, fixture

USDM, COINM = FEEDS
USDM_INSTRUMENTS = bundled_snapshot("binance-usdm")
COINM_INSTRUMENTS = bundled_snapshot("binance-coinm")


def test_usdm_documented_frame() -> None:
    parsed = USDM.parse(fixture("binance", "usdm_documented.json"), {}, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # SELL = a forced sell = a long died. z=0.014 BTC at ap=9910: 0.014 * 9910 = 138.74 USD.
    assert_event(
        event,
        exchange="binance",
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


def test_coinm_documented_frame_counts_contracts_in_usd() -> None:
    parsed = COINM.parse(
        fixture("binance", "coinm_documented.json"), COINM_INSTRUMENTS, RECEIVED_TS
    )
    (event,) = parsed.events
    # BTCUSD_200925 is not in the snapshot: the documented rule gives 100 USD per BTC
    # contract. z=1 contract -> 100 USD; coins = 100 / ap 9496.5 = 0.0105301953346...
    assert_event(
        event,
        symbol="BTCUSD_200925",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="long",
        price=9496.5,
        quantity=100 / 9496.5,
        notional_usd=100.0,
        ts=1591154240949,
    )


def test_1000_prefixed_symbol_is_rescaled_to_real_coins() -> None:
    parsed = USDM.parse(
        fixture("binance", "usdm_1000pepe_short.json"), USDM_INSTRUMENTS, RECEIVED_TS
    )
    (event,) = parsed.events
    # BUY closes a short. z=100000 lots of 1000 PEPE = 1e8 PEPE; ap 0.0123 per 1000 PEPE
    # = 0.0000123 USDT per PEPE; notional 100000 * 0.0123 = 1230 USDT.
    assert_event(
        event,
        symbol="1000PEPEUSDT",
        coin="PEPE",
        side="short",
        price=0.0000123,
        quantity=1e8,
        notional_usd=1230.0,
        ts=1762290000000,
    )


def test_zero_average_price_falls_back_to_order_price() -> None:
    parsed = COINM.parse(
        fixture("binance", "coinm_eth_perp_unfilled_ap.json"), COINM_INSTRUMENTS, RECEIVED_TS
    )
    (event,) = parsed.events
    # ETH: 10 USD per contract; 25 contracts = 250 USD; ap is 0 so p=3500.5 is the price.
    assert_event(
        event, coin="ETH", side="short", price=3500.5, quantity=250 / 3500.5, notional_usd=250.0
    )


def test_combined_stream_wrapper_and_acks() -> None:
    (event,) = USDM.parse(fixture("binance", "combined_stream.json"), {}, RECEIVED_TS).events
    # 2.5 ETH at 3401.2 = 8503 USDT.
    assert_event(event, symbol="ETHUSDT", side="long", quantity=2.5, notional_usd=8503.0)
    ack = USDM.parse(fixture("binance", "subscribe_ack.json"), {}, RECEIVED_TS)
    assert ack.events == [] and ack.rejects == []


def test_usdm_quarterly_follows_the_usdm_rules() -> None:
    parsed = USDM.parse(fixture("binance", "usdm_quarterly.json"), USDM_INSTRUMENTS, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # BTCUSDT_260925 (a quarterly, not in the snapshot): coins like BTCUSDT. SELL = a long
    # died; z=0.250 BTC at ap 98012.4 = 24503.1 USDT.
    assert_event(
        event,
        symbol="BTCUSDT_260925",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=98012.4,
        quantity=0.25,
        notional_usd=24503.1,
        ts=1782900000117,
    )


@pytest.mark.parametrize("feed", FEEDS, ids=lambda f: f.name)
def test_coinm_quarterly_on_either_stream(feed: Feed) -> None:
    parsed = feed.parse(fixture("binance", "coinm_quarterly.json"), {}, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # BTCUSD_260925: 12 contracts x 100 USD = 1200 USD; BUY = a short died;
    # coins = 1200 / ap 98750.5 = 0.0121518372...
    assert_event(
        event,
        symbol="BTCUSD_260925",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="short",
        price=98750.5,
        quantity=1200 / 98750.5,
        notional_usd=1200.0,
        ts=1782900000338,
    )


def test_merged_universe_usdm_order_on_dstream_counts_once() -> None:
    """Since 2026-06-30 dstream pushes USD-M orders too: routed by symbol to the USD-M rules,
    with the id the fstream copy gets, so de-duplication drops the second copy."""
    text = fixture("binance", "usdm_documented.json")
    (on_dstream,) = COINM.parse(text, COINM_INSTRUMENTS, RECEIVED_TS).events
    (on_fstream,) = USDM.parse(text, USDM_INSTRUMENTS, RECEIVED_TS + 3).events
    # BTCUSDT: 0.014 BTC at 9910 = 138.74 USD, linear, not a COIN-M contract.
    assert_event(
        on_dstream,
        symbol="BTCUSDT",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=9910.0,
        quantity=0.014,
        notional_usd=138.74,
    )
    assert on_dstream.id == on_fstream.id
    assert on_dstream.to_dict() | {"received_ts": 0} == on_fstream.to_dict() | {"received_ts": 0}
    pepe = fixture("binance", "usdm_1000pepe_short.json")
    assert COINM.parse(pepe, {}, RECEIVED_TS).events == USDM.parse(pepe, {}, RECEIVED_TS).events


def test_ids_do_not_depend_on_the_streams_instrument_lists() -> None:
    """A COIN-M order seen on fstream (no dapi metadata there) keeps the dstream copy's id."""
    text = fixture("binance", "coinm_quarterly.json")
    odd_size = {"BTCUSD_260925": Instrument("BTCUSD_260925", "BTC", "USD", "inverse", 10.0)}
    (with_metadata,) = COINM.parse(text, odd_size, RECEIVED_TS).events
    (derived,) = USDM.parse(text, {}, RECEIVED_TS).events
    assert with_metadata.notional_usd == 120.0 and derived.notional_usd == 1200.0
    assert with_metadata.id == derived.id


def test_deterministic_ids_deduplicate_repeated_snapshots() -> None:
    text = fixture("binance", "usdm_documented.json")
    first = USDM.parse(text, {}, RECEIVED_TS).events[0]
    again = USDM.parse(text, {}, RECEIVED_TS + 5000).events[0]
    assert first.id == again.id


def _with(text: str, **order_fields: object) -> str:
    frame = orjson.loads(text)
    frame["o"].update(order_fields)
    return orjson.dumps(frame).decode()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("{not json", "invalid_json"),
        ('{"e":"forceOrder","E":1,"o":{"s":"BTCUSDT"', "invalid_json"),  # truncated
        ('"hello"', "unexpected_shape"),
        (_with(fixture("binance", "usdm_documented.json"), z="NaN"), "quantity_not_finite"),
        (_with(fixture("binance", "usdm_documented.json"), z="-0.5"), "quantity_not_positive"),
        (_with(fixture("binance", "usdm_documented.json"), z="0"), "quantity_not_positive"),
        (_with(fixture("binance", "usdm_documented.json"), ap="abc"), "invalid_number"),
        (_with(fixture("binance", "usdm_documented.json"), S="HOLD"), "unexpected_shape"),
        (_with(fixture("binance", "usdm_documented.json"), s="WEIRD"), "unknown_symbol"),
        ("x" * 1_100_000, "oversized_frame"),
    ],
)
def test_bad_frames_are_rejected_with_a_reason(frame: str, reason: str) -> None:
    parsed = USDM.parse(frame, USDM_INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_unknown_coin_margined_symbol_asks_for_metadata() -> None:
    frame = _with(fixture("binance", "coinm_documented.json"), s="MYSTERY")
    parsed = COINM.parse(frame, COINM_INSTRUMENTS, RECEIVED_TS)
    assert [r.reason for r in parsed.rejects] == ["unknown_symbol"]


def test_protocol() -> None:
    assert USDM.url == "wss://fstream.binance.com/market/ws/!forceOrder@arr"
    assert COINM.url == "wss://dstream.binance.com/ws/!forceOrder@arr"
    assert USDM.subscribe(["BTCUSDT"]) == []  # named in the path
    assert USDM.max_connection_age_s is not None and USDM.max_connection_age_s < 24 * 3600
    reply = simulator_for(USDM).reply(
        '{"method": "SUBSCRIBE", "params": ["!forceOrder@arr"], "id": 1}'
    )
    assert orjson.loads(reply[0]) == {"result": None, "id": 1}
    assert "lower bound" in USDM.notes
    assert USDM.instruments_url == "https://fapi.binance.com/fapi/v1/exchangeInfo"
    assert COINM.instruments_url == "https://dapi.binance.com/dapi/v1/exchangeInfo"


def test_instruments_from_rest() -> None:
    payload = {
        "symbols": [
            {"symbol": "BTCUSD_PERP", "baseAsset": "BTC", "contractSize": 100},
            {"symbol": "ETHUSD_PERP", "baseAsset": "ETH", "contractSize": 10},
        ]
    }
    assert COINM.instruments_from_rest is not None
    instruments = COINM.instruments_from_rest(payload)
    assert instruments["BTCUSD_PERP"].contract_size == 100.0
    assert instruments["ETHUSD_PERP"].contract_type == "inverse"


def test_usdm_instruments_from_rest() -> None:
    assert USDM.instruments_from_rest is not None
    payload = orjson.loads(fixture("binance", "rest_usdm_exchange_info.json"))
    instruments = USDM.instruments_from_rest(payload)
    assert instruments == {
        "BTCUSDT": Instrument("BTCUSDT", "BTC", "USDT", "linear", 1.0, 1),
        "BTCUSDT_260925": Instrument("BTCUSDT_260925", "BTC", "USDT", "linear", 1.0, 1),
        "1000PEPEUSDT": Instrument("1000PEPEUSDT", "PEPE", "USDT", "linear", 1.0, 1000),
        "ETHUSDC": Instrument("ETHUSDC", "ETH", "USDC", "linear", 1.0, 1),
    }
    # The symbol rule used without metadata gives the same rules, so ids agree either way.
    for symbol, instrument in instruments.items():
        assert instrument_for(symbol, {}) == instrument


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(USDM_INSTRUMENTS) - 1),
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=2e5),
    coins=st.floats(min_value=1e-4, max_value=5e3),  # notional at most 1e9 USD: plausible
    ts=st.integers(min_value=1_600_000_000_000, max_value=1_900_000_000_000),
)
def test_usdm_render_round_trip(index: int, side: str, price: float, coins: float, ts: int) -> None:
    instrument = list(USDM_INSTRUMENTS.values())[index]
    (event,) = USDM.parse(
        simulator_for(USDM).render(instrument, side, price, coins, ts, 1),
        USDM_INSTRUMENTS,
        RECEIVED_TS,
    ).events
    assert (event.side, event.coin, event.ts) == (side, instrument.coin, ts)
    assert event.price == pytest.approx(price, rel=1e-9)
    assert event.quantity == pytest.approx(coins, rel=1e-9)
    assert event.notional_usd == pytest.approx(price * coins, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(COINM_INSTRUMENTS) - 1),
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=0.01, max_value=2e5),
    contracts=st.integers(min_value=1, max_value=10**6),
)
def test_coinm_render_round_trip(index: int, side: str, price: float, contracts: int) -> None:
    instrument = list(COINM_INSTRUMENTS.values())[index]
    coins = contracts * instrument.contract_size / price  # a whole number of contracts
    text = simulator_for(COINM).render(instrument, side, price, coins, 1_762_290_000_000, 1)
    (event,) = COINM.parse(text, COINM_INSTRUMENTS, RECEIVED_TS).events
    assert event.side == side and event.contract_type == "inverse"
    assert event.notional_usd == pytest.approx(contracts * instrument.contract_size, rel=1e-12)
    assert event.quantity == pytest.approx(coins, rel=1e-9)
