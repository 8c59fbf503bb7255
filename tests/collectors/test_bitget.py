"""Bitget UTA liquidation topic: position side, amounts in quote currency, three product types."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import bitget
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import assert_event, assert_round_trip

FIXTURES = Path(__file__).parent / "fixtures" / "bitget"
RECEIVED = 1_736_371_335_000
(FEED,) = bitget.FEEDS
SNAPSHOT = bundled_snapshot("bitget")


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_feed() -> None:
    assert (FEED.name, FEED.exchange) == ("bitget", "bitget")
    assert FEED.url == "wss://ws.bitget.com/v3/ws/public"
    assert not FEED.needs_symbols
    assert (FEED.ping_text, FEED.ping_interval_s) == ("ping", 30.0)
    assert "lower bound" in FEED.notes and "quote currency" in FEED.notes
    assert FEED.lower_bound


def test_subscribe_every_product_type() -> None:
    assert FEED.subscribe([]) == [
        '{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"},'
        '{"instType":"usdc-futures","topic":"liquidation"},'
        '{"instType":"coin-futures","topic":"liquidation"}]}'
    ]


def test_fake_server_acks_and_pongs() -> None:
    acks = simulator_for(FEED).reply(FEED.subscribe([])[0])
    assert len(acks) == 3
    assert orjson.loads(acks[0])["arg"] == orjson.loads(frame("subscribe_ack.json"))["arg"]
    assert simulator_for(FEED).reply("ping") == ["pong"]
    for reply in [*acks, "pong"]:
        parsed = FEED.parse(reply, SNAPSHOT, RECEIVED)
        assert parsed.events == [] and parsed.rejects == []


def test_live_push_amount_is_quote_currency() -> None:
    """Captured live by tardis-node (2026-04-28): the amount is USDT, not coins."""
    parsed = FEED.parse(frame("push_live_2026-04-28.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    ape, ip = parsed.events
    # APEUSDT buy = a long died; 13.70319 USDT / 0.1649 = 83.1 APE (a whole 0.1 lot), $13.70319.
    assert_event(
        ape,
        exchange="bitget",
        symbol="APEUSDT",
        coin="APE",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=0.1649,
        quantity=83.1,
        notional_usd=13.70319,
        ts=1777358886549,
    )
    # IPUSDT buy: 143.330431857868 USDT / 0.500280739469 = 286.5 IP, $143.330431857868.
    assert_event(
        ip,
        symbol="IPUSDT",
        coin="IP",
        side="long",
        price=0.500280739469,
        quantity=286.5,
        notional_usd=143.330431857868,
        ts=1777358876983,
    )


def test_documented_push() -> None:
    parsed = FEED.parse(frame("push_documented.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # BTCUSDT side buy = the position side: a long died. amount 37.722858 is USDT:
    # 37.722858 / 89000 = 0.000423852337... BTC, USD 37.722858.
    assert_event(
        event,
        exchange="bitget",
        symbol="BTCUSDT",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=89000.0,
        quantity=37.722858 / 89000,
        notional_usd=37.722858,
        ts=1736371332162,  # a string on the wire
    )
    assert len(event.id) == 24  # no venue id: the deterministic hash


def test_push_with_several_records() -> None:
    parsed = FEED.parse(frame("push_multi.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    short, long_, wif = parsed.events
    # ETHUSDT sell = a short died: 30154.375 USDT / 2412.35 = 12.5 ETH.
    assert_event(short, side="short", price=2412.35, quantity=12.5, notional_usd=30154.375)
    # ETHUSDT buy = a long died: 9592.4 USDT / 2398.1 = 4 ETH (the other record of that second).
    assert_event(long_, side="long", price=2398.1, quantity=4.0, notional_usd=9592.4)
    # WIFUSDT is not in the snapshot; the symbol gives coin and quote: 3545 / 1.7725 = 2000 WIF.
    assert_event(
        wif,
        symbol="WIFUSDT",
        coin="WIF",
        quote="USDT",
        side="long",
        quantity=2000.0,
        notional_usd=3545.0,
    )


def test_coin_margined_push() -> None:
    (event,) = FEED.parse(frame("push_coin.json"), SNAPSHOT, RECEIVED).events
    # coin-futures BTCUSD sell = a short died; amount is USD: 67594.125 / 90125.5 = 0.75 BTC.
    assert_event(
        event,
        symbol="BTCUSD",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="short",
        price=90125.5,
        quantity=0.75,
        notional_usd=67594.125,
        ts=1736371334100,
    )


def test_bad_items_are_rejected_with_reasons() -> None:
    parsed = FEED.parse(frame("push_bad.json"), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [
        "quantity_not_positive",  # amount 0
        "quantity_not_positive",  # negative amount
        "price_not_finite",  # "NaN"
        "side_invalid",  # "long" is not a documented side value
        "malformed_item",  # no symbol
    ]


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("pong.txt", []),
        ("subscribe_ack.json", []),
        ("error.json", ["venue_error"]),
        ("truncated.txt", ["invalid_json"]),
    ],
)
def test_frames_without_liquidations(name: str, reasons: list[str]) -> None:
    parsed = FEED.parse(frame(name), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == reasons


@pytest.mark.parametrize(
    "text",
    [
        "[1, 2, 3]",
        '{"data":[],"arg":{"instType":"spot","topic":"liquidation"},"action":"update"}',
        '{"data":{},"arg":{"instType":"usdt-futures","topic":"liquidation"},"action":"update"}',
    ],
)
def test_wrong_shapes_are_rejected(text: str) -> None:
    assert [r.reason for r in FEED.parse(text, SNAPSHOT, RECEIVED).rejects] == ["unexpected_shape"]


@pytest.mark.parametrize(
    ("symbol", "inst_type", "expected"),
    [
        ("BTCUSDT", "usdt-futures", Instrument("BTCUSDT", "BTC", "USDT", "linear")),
        ("USDCUSDT", "usdt-futures", Instrument("USDCUSDT", "USDC", "USDT", "linear")),
        (
            "1000BONKUSDT",
            "usdt-futures",
            Instrument("1000BONKUSDT", "BONK", "USDT", "linear", 1, 1000),
        ),
        ("BTCPERP", "usdc-futures", Instrument("BTCPERP", "BTC", "USDC", "linear")),
        ("ETHUSD", "coin-futures", Instrument("ETHUSD", "ETH", "USD", "inverse")),
    ],
)
def test_symbols(symbol: str, inst_type: str, expected: Instrument) -> None:
    assert bitget.instrument_from_symbol(symbol, inst_type) == expected


def test_unrecognised_symbol_is_rejected() -> None:
    text = frame("push_coin.json").replace('"BTCUSD"', '"BTC-EUR"')
    parsed = FEED.parse(text, SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == ["unrecognised_symbol"]
    assert "BTC-EUR" in parsed.rejects[0].detail


def test_multiplier_prefix_is_rescaled() -> None:
    text = (
        '{"data":[{"symbol":"1000BONKUSDT","side":"sell","price":"0.0215","amount":"10.75",'
        '"ts":"1736371332162"}],"arg":{"instType":"usdt-futures","topic":"liquidation"},'
        '"action":"update","ts":1736371332170}'
    )
    (event,) = FEED.parse(text, SNAPSHOT, RECEIVED).events
    # 10.75 USDT / 0.0215 per lot = 500 lots of 1000 BONK = 500,000 BONK at 0.0000215 each;
    # USD = the amount, 10.75.
    assert (event.coin, event.side) == ("BONK", "short")
    assert event.quantity == pytest.approx(500_000, rel=1e-12)
    assert event.price == pytest.approx(0.0000215, rel=1e-12)
    assert event.notional_usd == pytest.approx(10.75, rel=1e-12)


@pytest.mark.parametrize("symbol", sorted(SNAPSHOT))
@settings(max_examples=25, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=1e6),  # notional at most 1e9 USD: plausible
    coins=st.floats(min_value=1e-6, max_value=1e3),
    ts=st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_render_round_trip(
    symbol: str, side: str, price: float, coins: float, ts: int, seq: int
) -> None:
    event = assert_round_trip(FEED, SNAPSHOT, symbol, side, price, coins, ts, seq)
    assert event.contract_type == SNAPSHOT[symbol].contract_type
