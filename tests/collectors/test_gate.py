"""Gate: documented and live frame shapes, size sign -> side, quanto_multiplier contracts."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import gate
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Feed, Instrument
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import assert_event, assert_round_trip

FIXTURES = Path(__file__).parent / "fixtures" / "gate"
RECEIVED = 1_786_327_034_000
FEED, BTC_FEED, USD1_FEED = gate.FEEDS
SNAPSHOT = bundled_snapshot("gate")


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def rest_instruments() -> dict[str, Instrument]:
    assert FEED.instruments_from_rest is not None
    return FEED.instruments_from_rest(orjson.loads(frame("rest_contracts.json")))


def test_feed() -> None:
    assert (FEED.name, FEED.exchange) == ("gate", "gate")
    assert FEED.url == "wss://fx-ws.gateio.ws/v4/ws/usdt"
    assert not FEED.needs_symbols
    assert FEED.ping_text == '{"channel":"futures.ping"}'
    assert FEED.instruments_url == "https://api.gateio.ws/api/v4/futures/usdt/contracts"
    assert not FEED.lower_bound  # aggregated, nothing discarded since 2026-08-20
    assert "lower bound" not in FEED.notes


def test_every_settle_currency_is_its_own_feed() -> None:
    """Gate serves BTC-, USDT- and USD1-settled contracts on separate sockets and paths."""
    assert [(f.name, f.url, f.instruments_url) for f in gate.FEEDS] == [
        (
            "gate",
            "wss://fx-ws.gateio.ws/v4/ws/usdt",
            "https://api.gateio.ws/api/v4/futures/usdt/contracts",
        ),
        (
            "gate-btc",
            "wss://fx-ws.gateio.ws/v4/ws/btc",
            "https://api.gateio.ws/api/v4/futures/btc/contracts",
        ),
        (
            "gate-usd1",
            "wss://fx-ws.gateio.ws/v4/ws/usd1",
            "https://api.gateio.ws/api/v4/futures/usd1/contracts",
        ),
    ]
    for feed in gate.FEEDS:
        assert feed.exchange == "gate"
        assert not feed.lower_bound


@pytest.mark.parametrize("feed", gate.FEEDS, ids=lambda f: f.name)
def test_handshake_asks_for_decimal_sizes(feed: Feed) -> None:
    """Without the header, sizes of decimal-size contracts arrive rounded to integers."""
    assert ("X-Gate-Size-Decimal", "1") in feed.handshake_headers


def test_decimal_size_keeps_its_fraction() -> None:
    parsed = FEED.parse(frame("update_decimal_size.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # ETH_USDT: size "-12.5" (a decimal contract, sent as a string with the header): a long
    # died; 12.5 contracts x 0.01 ETH = 0.125 ETH; USD = 0.125 x 2412.35 = 301.54375.
    assert_event(
        event,
        exchange="gate",
        symbol="ETH_USDT",
        coin="ETH",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=2412.35,
        quantity=0.125,
        notional_usd=301.54375,
        ts=1786327050211,
    )


def test_btc_settled_inverse_contract() -> None:
    """The documented example's BTC_USD, on the btc socket: one contract is 1 USD."""
    assert BTC_FEED.instruments_from_rest is not None
    instruments = BTC_FEED.instruments_from_rest(orjson.loads(frame("rest_contracts_btc.json")))
    assert instruments == {"BTC_USD": Instrument("BTC_USD", "BTC", "USD", "inverse", 1.0)}
    assert bundled_snapshot("gate-btc") == instruments
    parsed = BTC_FEED.parse(frame("update_documented_btc_usd.json"), instruments, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # size -124 = a long died; 124 contracts x 1 USD = 124 USD; 124 / 215.1 BTC.
    assert_event(
        event,
        symbol="BTC_USD",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="long",
        price=215.1,
        quantity=124 / 215.1,
        notional_usd=124.0,
        ts=1541486601123,
    )


def test_usd1_settled_contract() -> None:
    text = (
        '{"time":1789456334,"time_ms":1789456334999,"channel":"futures.public_liquidates",'
        '"event":"update","result":{"contract":"BTC_USD1","price":"77250.5","time":1789456334998,'
        '"size":"3"}}'
    )
    (event,) = USD1_FEED.parse(text, bundled_snapshot("gate-usd1"), RECEIVED).events
    # size 3 = a forced buy = a short died; 3 x 0.0001 = 0.0003 BTC; USD = 0.0003 x 77250.5.
    assert_event(
        event,
        symbol="BTC_USD1",
        coin="BTC",
        quote="USD1",
        contract_type="linear",
        side="short",
        price=77250.5,
        quantity=0.0003,
        notional_usd=23.17515,
        ts=1789456334998,
    )


def test_subscribe_all_contracts() -> None:
    assert gate.subscribe_messages([], 1700000000) == [
        '{"time":1700000000,"channel":"futures.public_liquidates","event":"subscribe",'
        '"payload":["!all"]}'
    ]
    (message,) = FEED.subscribe([])
    assert abs(orjson.loads(message)["time"] - time.time()) < 5


def test_fake_server_answers_subscribe_and_ping() -> None:
    (ack,) = simulator_for(FEED).reply(FEED.subscribe([])[0])
    assert orjson.loads(ack)["result"] == {"status": "success"}
    assert FEED.ping_text is not None
    (pong,) = simulator_for(FEED).reply(FEED.ping_text)
    assert orjson.loads(pong)["channel"] == "futures.pong"
    for reply in (ack, pong):
        assert FEED.parse(reply, SNAPSHOT, RECEIVED).events == []
    assert simulator_for(FEED).heartbeat() is None
    assert FEED.answer(pong) is None


def test_documented_frame_with_two_liquidations() -> None:
    parsed = FEED.parse(frame("update_documented.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    eth, btc = parsed.events
    # ETH_USDT: size -124 = a forced sell = a long died; 124 contracts x 0.01 ETH = 1.24 ETH;
    # USD = 1.24 x 215.1 = 266.724.
    assert (eth.exchange, eth.symbol, eth.coin, eth.quote) == ("gate", "ETH_USDT", "ETH", "USDT")
    assert eth.contract_type == "linear"
    assert eth.side == "long"
    assert eth.price == 215.1
    assert eth.quantity == pytest.approx(1.24, rel=1e-12)
    assert eth.notional_usd == pytest.approx(266.724, rel=1e-12)
    assert eth.ts == 1541486601123
    assert len(eth.id) == 24  # no venue id: the deterministic hash
    # BTC_USDT: size "37" (a string) = a forced buy = a short died; 37 x 0.0001 = 0.0037 BTC;
    # USD = 0.0037 x 64000.5 = 236.80185.
    assert (btc.symbol, btc.side, btc.price) == ("BTC_USDT", "short", 64000.5)
    assert btc.quantity == pytest.approx(0.0037, rel=1e-12)
    assert btc.notional_usd == pytest.approx(236.80185, rel=1e-12)
    assert btc.ts == 1541486601456


def test_live_frame_shape_bare_object_and_time_field() -> None:
    # gateio/WebSocket-API issue #132 frame, verbatim: `result` is one object, `time` is ms.
    parsed = FEED.parse(frame("update_live.json"), rest_instruments(), RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # HEI_USDT: size -23 = long died; 23 contracts x 10 HEI = 230 HEI; USD = 230 x 0.13827.
    assert (event.symbol, event.coin, event.side) == ("HEI_USDT", "HEI", "long")
    assert event.price == 0.13827
    assert event.quantity == 230
    assert event.notional_usd == pytest.approx(31.8021, rel=1e-12)
    assert event.ts == 1786327033531


def test_unknown_contract_needs_metadata() -> None:
    parsed = FEED.parse(frame("update_live.json"), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == ["unknown_symbol"]
    assert "HEI_USDT" in parsed.rejects[0].detail
    parsed = FEED.parse(frame("update_documented_btc_usd.json"), SNAPSHOT, RECEIVED)
    assert [r.reason for r in parsed.rejects] == ["unknown_symbol"]  # a BTC-settled contract


def test_multiplier_prefix_is_rescaled() -> None:
    instruments = rest_instruments()
    assert instruments["1000SATS_USDT"] == Instrument(
        "1000SATS_USDT", "SATS", "USDT", "linear", 100.0, 1000
    )
    text = (
        '{"channel":"futures.public_liquidates","event":"update","time":1786327040,'
        '"result":{"contract":"1000SATS_USDT","price":"0.25","time":1786327040872,"size":8}}'
    )
    (event,) = FEED.parse(text, instruments, RECEIVED).events
    # 8 contracts x 100 (x 1000 SATS) = 800,000 SATS at 0.25 / 1000 = 0.00025 USDT each;
    # USD = 8 x 100 x 0.25 = 200 (unchanged by the rescaling); size > 0 = short died.
    assert (event.coin, event.side) == ("SATS", "short")
    assert event.quantity == 800_000
    assert event.price == pytest.approx(0.00025, rel=1e-12)
    assert event.notional_usd == 200


def test_seconds_timestamps_are_scaled_to_ms() -> None:
    text = (
        '{"channel":"futures.public_liquidates","event":"update","time":1786327040,'
        '"result":[{"contract":"BTC_USDT","price":"97000","time":1786327040,"size":-2}]}'
    )
    (event,) = FEED.parse(text, SNAPSHOT, RECEIVED).events
    assert event.ts == 1786327040000


def test_bad_items_are_rejected_with_reasons() -> None:
    parsed = FEED.parse(frame("update_bad.json"), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [
        "price_not_finite",  # "NaN"
        "quantity_not_positive",  # size 0
        "malformed_item",  # size "lots"
        "price_not_positive",  # negative price
        "malformed_item",  # no contract
    ]


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("subscribe_ack.json", []),
        ("pong.json", []),
        ("subscribe_error.json", ["venue_error"]),
    ],
)
def test_frames_without_liquidations(name: str, reasons: list[str]) -> None:
    parsed = FEED.parse(frame(name), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == reasons


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            '{"channel":"futures.public_liquidates","event":"update","result":[{"contr',
            "invalid_json",
        ),
        ("[1, 2, 3]", "unexpected_shape"),
        ("x" * 1_000_001, "oversized_frame"),
    ],
)
def test_malformed_frames(text: str, reason: str) -> None:
    parsed = FEED.parse(text, SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_instruments_from_rest() -> None:
    instruments = rest_instruments()
    assert instruments["BTC_USDT"] == Instrument("BTC_USDT", "BTC", "USDT", "linear", 0.0001, 1)
    assert SNAPSHOT["BTC_USDT"] == instruments["BTC_USDT"]  # the documented sample
    with pytest.raises(ValueError):
        gate.instruments_from_rest({"label": "SERVER_ERROR", "message": "busy"})


INSTRUMENTS = [
    (feed, symbol) for feed in gate.FEEDS for symbol in sorted(bundled_snapshot(feed.name))
]


@pytest.mark.parametrize(("feed", "symbol"), INSTRUMENTS, ids=lambda v: getattr(v, "name", v))
@settings(max_examples=25, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=1e6),  # notional at most 1e9 USD: plausible
    coins=st.floats(min_value=1e-6, max_value=1e3),
    ts=st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_render_round_trip(
    feed: Feed, symbol: str, side: str, price: float, coins: float, ts: int, seq: int
) -> None:
    assert_round_trip(feed, bundled_snapshot(feed.name), symbol, side, price, coins, ts, seq)
