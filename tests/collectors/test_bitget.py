"""Bitget UTA liquidation topic: position side, amounts in coins, three product types."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import bitget
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from tests.collectors.venue_helpers import assert_round_trip

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
    assert "lower bound" in FEED.notes and "unconfirmed" in FEED.notes


def test_subscribe_every_product_type() -> None:
    assert FEED.subscribe([]) == [
        '{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"},'
        '{"instType":"usdc-futures","topic":"liquidation"},'
        '{"instType":"coin-futures","topic":"liquidation"}]}'
    ]


def test_fake_server_acks_and_pongs() -> None:
    acks = FEED.fake_reply(FEED.subscribe([])[0])
    assert len(acks) == 3
    assert orjson.loads(acks[0])["arg"] == orjson.loads(frame("subscribe_ack.json"))["arg"]
    assert FEED.fake_reply("ping") == ["pong"]
    for reply in [*acks, "pong"]:
        parsed = FEED.parse(reply, SNAPSHOT, RECEIVED)
        assert parsed.events == [] and parsed.rejects == []


def test_documented_push() -> None:
    parsed = FEED.parse(frame("push_documented.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # BTCUSDT side buy = the position side: a long died. amount 37.722858 read as BTC
    # (unconfirmed, see bitget.py); USD = 37.722858 x 89000 = 3357334.362.
    assert (event.exchange, event.symbol, event.coin, event.quote) == (
        "bitget",
        "BTCUSDT",
        "BTC",
        "USDT",
    )
    assert event.contract_type == "linear"
    assert event.side == "long"
    assert (event.price, event.quantity) == (89000, 37.722858)
    assert event.notional_usd == pytest.approx(3357334.362, rel=1e-12)
    assert event.ts == 1736371332162  # a string on the wire
    assert len(event.id) == 24  # no venue id: the deterministic hash


def test_push_with_several_records() -> None:
    parsed = FEED.parse(frame("push_multi.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    short, long_, wif = parsed.events
    # ETHUSDT sell = a short died: 12.5 ETH x 2412.35 = 30154.375 USD.
    assert (short.side, short.quantity, short.price) == ("short", 12.5, 2412.35)
    assert short.notional_usd == pytest.approx(30154.375, rel=1e-12)
    # ETHUSDT buy = a long died: 4 ETH x 2398.1 = 9592.4 USD (the other record of that second).
    assert (long_.side, long_.quantity) == ("long", 4)
    assert long_.notional_usd == pytest.approx(9592.4, rel=1e-12)
    # WIFUSDT is not in the snapshot; the frame fixes coins and USD: 2000 x 1.7725 = 3545.
    assert (wif.symbol, wif.coin, wif.quote, wif.side) == ("WIFUSDT", "WIF", "USDT", "long")
    assert wif.notional_usd == pytest.approx(3545, rel=1e-12)


def test_coin_margined_push() -> None:
    (event,) = FEED.parse(frame("push_coin.json"), SNAPSHOT, RECEIVED).events
    # coin-futures BTCUSD sell = a short died; 0.75 BTC x 90125.5 = 67594.125 USD.
    assert (event.symbol, event.coin, event.quote, event.contract_type) == (
        "BTCUSD",
        "BTC",
        "USD",
        "inverse",
    )
    assert (event.side, event.quantity, event.price) == ("short", 0.75, 90125.5)
    assert event.notional_usd == pytest.approx(67594.125, rel=1e-12)
    assert event.ts == 1736371334100


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
        '{"data":[{"symbol":"1000BONKUSDT","side":"sell","price":"0.0215","amount":"500",'
        '"ts":"1736371332162"}],"arg":{"instType":"usdt-futures","topic":"liquidation"},'
        '"action":"update","ts":1736371332170}'
    )
    (event,) = FEED.parse(text, SNAPSHOT, RECEIVED).events
    # 500 lots of 1000 BONK = 500,000 BONK at 0.0215 / 1000 = 0.0000215 USDT each;
    # USD = 500 x 0.0215 = 10.75, unchanged by the rescaling.
    assert (event.coin, event.side, event.quantity) == ("BONK", "short", 500_000)
    assert event.price == pytest.approx(0.0000215, rel=1e-12)
    assert event.notional_usd == pytest.approx(10.75, rel=1e-12)


@pytest.mark.parametrize("symbol", sorted(SNAPSHOT))
@settings(max_examples=25, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=1e7),
    coins=st.floats(min_value=1e-6, max_value=1e6),
    ts=st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_render_round_trip(
    symbol: str, side: str, price: float, coins: float, ts: int, seq: int
) -> None:
    event = assert_round_trip(FEED, SNAPSHOT, symbol, side, price, coins, ts, seq)
    assert event.contract_type == SNAPSHOT[symbol].contract_type
