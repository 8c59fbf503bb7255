"""Kraken Futures: liquidation items of the trade feed, taker side, PF_ coins vs PI_ USD."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import kraken
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from stream.simulators import simulator_for
from stream.simulators.kraken import FakeSession
from tests.collectors.venue_helpers import assert_round_trip

FIXTURES = Path(__file__).parent / "fixtures" / "kraken"
RECEIVED = 1_790_360_005_000
(FEED,) = kraken.FEEDS
SNAPSHOT = bundled_snapshot("kraken")


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_feed() -> None:
    assert (FEED.name, FEED.exchange) == ("kraken", "kraken")
    assert FEED.url == "wss://futures.kraken.com/ws/v1"
    assert FEED.needs_symbols
    assert FEED.ping_text is None  # websocket-level pings, see the module docstring


def test_subscribe_heartbeat_and_products_in_batches() -> None:
    assert FEED.subscribe(["PF_XBTUSD", "PI_XBTUSD"]) == [
        '{"event":"subscribe","feed":"heartbeat"}',
        '{"event":"subscribe","feed":"trade","product_ids":["PF_XBTUSD","PI_XBTUSD"]}',
    ]
    products = [f"PF_C{n}USD" for n in range(250)]
    messages = [orjson.loads(m) for m in FEED.subscribe(products)]
    assert [len(m.get("product_ids", [])) for m in messages] == [0, 100, 100, 50]
    assert [p for m in messages for p in m.get("product_ids", [])] == products


def test_fake_server_acks_each_subscription() -> None:
    for message in FEED.subscribe(["PF_XBTUSD"]):
        (ack,) = simulator_for(FEED).reply(message)
        assert orjson.loads(ack)["event"] == "subscribed"
        assert FEED.parse(ack, SNAPSHOT, RECEIVED).events == []
    (ack,) = simulator_for(FEED).reply(FEED.subscribe(["PF_XBTUSD"])[1])
    assert orjson.loads(ack) == orjson.loads(frame("subscribed.json"))


def test_linear_liquidation_in_coins() -> None:
    parsed = FEED.parse(frame("trade_liquidation_pf.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # PF_XBTUSD: taker sold = the liquidated long; 0.25 BTC; USD = 0.25 x 34891 = 8722.75.
    assert (event.exchange, event.symbol, event.coin, event.quote) == (
        "kraken",
        "PF_XBTUSD",
        "BTC",
        "USD",
    )
    assert event.contract_type == "linear"
    assert event.side == "long"
    assert (event.price, event.quantity, event.notional_usd) == (34891, 0.25, 8722.75)
    assert event.ts == 1612269656839
    assert event.id == "45ee9737-1877-4682-bc68-e4ef818ef88a"


def test_inverse_liquidation_in_usd_contracts() -> None:
    (event,) = FEED.parse(frame("trade_liquidation_pi.json"), SNAPSHOT, RECEIVED).events
    # PI_XBTUSD: taker bought = a short died; 5000 contracts x 1 USD = 5000 USD;
    # coins = 5000 / 40000 = 0.125 BTC.
    assert (event.symbol, event.coin, event.contract_type) == ("PI_XBTUSD", "BTC", "inverse")
    assert event.side == "short"
    assert (event.price, event.quantity, event.notional_usd) == (40000, 0.125, 5000)
    assert event.id == "caa9c653-420b-4c24-a9f1-462a054d86f1"


def test_snapshot_keeps_only_liquidations() -> None:
    parsed = FEED.parse(frame("trade_snapshot.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    short, long_ = parsed.events  # the venue's newest-first order is kept
    # PF_ETHUSD buy 12.5 ETH at 2400.5 = a short died, USD 30006.25;
    # sell 2 ETH at 2410 = a long died, USD 4820. The fill and the termination are skipped.
    assert (short.side, short.quantity, short.price, short.notional_usd) == (
        "short",
        12.5,
        2400.5,
        30006.25,
    )
    assert (long_.side, long_.quantity, long_.price, long_.notional_usd) == ("long", 2, 2410, 4820)
    assert [e.id for e in parsed.events] == [
        "1893f0aa-0084-4289-b02f-67444b325728",
        "0a265ed2-0c5d-4d81-ba70-4bbbd724783d",
    ]
    assert [e.ts for e in parsed.events] == [1790359963339, 1790359950000]


def test_unknown_products() -> None:
    parsed = FEED.parse(frame("trade_unknown_products.json"), SNAPSHOT, RECEIVED)
    # PI_XYZUSD is inverse: its contract size is metadata -> unknown_symbol (refresh).
    assert [r.reason for r in parsed.rejects] == ["unknown_symbol"]
    assert "PI_XYZUSD" in parsed.rejects[0].detail
    # PF_NEWUSD is linear: 100 NEW at 0.5 = 50 USD, short died; no metadata needed.
    (event,) = parsed.events
    assert (event.symbol, event.coin, event.quote, event.side) == (
        "PF_NEWUSD",
        "NEW",
        "USD",
        "short",
    )
    assert (event.quantity, event.notional_usd) == (100, 50)


def test_bad_items_are_rejected_with_reasons() -> None:
    parsed = FEED.parse(frame("trade_bad.json"), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [
        "quantity_not_positive",  # qty 0
        "quantity_not_positive",  # negative qty
        "quantity_not_finite",  # "NaN"
        "malformed_item",  # no product_id
    ]


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("trade_fill.json", []),
        ("subscribed.json", []),
        ("info.json", []),
        ("heartbeat.json", []),
        ("error.json", ["venue_error"]),
        ("truncated.txt", ["invalid_json"]),
    ],
)
def test_frames_without_liquidations(name: str, reasons: list[str]) -> None:
    parsed = FEED.parse(frame(name), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == reasons


@pytest.mark.parametrize("text", ["[1, 2, 3]", '{"feed":"trade_snapshot","trades":7}'])
def test_wrong_shapes_are_rejected(text: str) -> None:
    assert [r.reason for r in FEED.parse(text, SNAPSHOT, RECEIVED).rejects] == ["unexpected_shape"]


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("PF_XBTUSD", Instrument("PF_XBTUSD", "BTC", "USD", "linear")),
        ("PI_ETHUSD", Instrument("PI_ETHUSD", "ETH", "USD", "inverse")),
        ("FI_XBTUSD_220930", Instrument("FI_XBTUSD_220930", "BTC", "USD", "inverse")),
        ("FF_ETHUSD_250328", Instrument("FF_ETHUSD_250328", "ETH", "USD", "linear")),
        ("in_xbtusd", None),
    ],
)
def test_symbols(symbol: str, expected: Instrument | None) -> None:
    assert kraken.instrument_from_symbol(symbol) == expected


def test_instruments_from_rest() -> None:
    assert FEED.instruments_from_rest is not None
    instruments = FEED.instruments_from_rest(orjson.loads(frame("rest_instruments.json")))
    # The documented sample labels PF_XBTUSD `futures_inverse`; the product prefix decides
    # (PF_ is multi-collateral, sized in coins). Untradeable products and indices are skipped.
    assert instruments == {
        "PF_XBTUSD": Instrument("PF_XBTUSD", "BTC", "USD", "linear", 1.0, 1),
        "FI_XBTUSD_220930": Instrument("FI_XBTUSD_220930", "BTC", "USD", "inverse", 1.0, 1),
        "PI_ETHUSD": Instrument("PI_ETHUSD", "ETH", "USD", "inverse", 1.0, 1),
    }
    with pytest.raises(ValueError):
        FEED.instruments_from_rest({"result": "error", "error": "apiLimitExceeded"})


@pytest.mark.parametrize("symbol", sorted(SNAPSHOT))
@settings(max_examples=25, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=1e5),  # notional within the schema's bound
    coins=st.floats(min_value=1e-6, max_value=1e4),
    ts=st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_render_round_trip(
    symbol: str, side: str, price: float, coins: float, ts: int, seq: int
) -> None:
    assert_round_trip(FEED, SNAPSHOT, symbol, side, price, coins, ts, seq)


def test_subscribe_answers_are_read() -> None:
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    assert per_symbol.preamble == ('{"event":"subscribe","feed":"heartbeat"}',)
    ok = per_symbol.read_reply(frame("subscribed.json"))
    assert ok is not None and ok.ok and ok.op == "subscribe" and ok.topics == ("PF_XBTUSD",)
    refused = per_symbol.read_reply(frame("error.json"))
    assert refused is not None and not refused.ok and refused.reason == "Invalid product id"
    assert refused.topics == ()  # names none: the oldest waiting request is meant
    assert per_symbol.read_reply('{"event":"subscribed","feed":"heartbeat"}') is None
    assert per_symbol.read_reply(frame("trade_liquidation_pf.json")) is None


def test_fake_kraken_refuses_a_request_with_an_unknown_product() -> None:
    session = FakeSession(frozenset({"PF_NOPEUSD"}))
    (answer,), new = session.reply(FEED.subscribe(["PF_XBTUSD", "PF_NOPEUSD"])[1])
    assert orjson.loads(answer) == {"event": "error", "message": "Invalid product id"}
    assert new == [] and session.topics == set()
    (answer,), new = session.reply(FEED.subscribe(["PF_XBTUSD"])[1])
    assert new == ["PF_XBTUSD"] and session.wants(frame("trade_liquidation_pf.json"))
