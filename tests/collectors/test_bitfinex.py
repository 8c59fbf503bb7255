"""Bitfinex liq:global: one event per position (trigger and execution rows paired), AMOUNT sign."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import bitfinex
from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.venue import Instrument
from stream.kafka import Topics
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import assert_event, assert_round_trip

FIXTURES = Path(__file__).parent / "fixtures" / "bitfinex"
RECEIVED = 1_609_144_353_000
(FEED,) = bitfinex.FEEDS
SNAPSHOT = bundled_snapshot("bitfinex")


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_feed() -> None:
    assert (FEED.name, FEED.exchange) == ("bitfinex", "bitfinex")
    assert FEED.url == "wss://api-pub.bitfinex.com/ws/2"
    assert not FEED.needs_symbols
    assert (
        FEED.ping_text is None and simulator_for(FEED).heartbeat() is None
    )  # `hb` needs no answer


def test_subscribe() -> None:
    assert FEED.subscribe([]) == ['{"event":"subscribe","channel":"status","key":"liq:global"}']


def test_fake_server_acks_with_a_channel_id() -> None:
    (ack,) = simulator_for(FEED).reply(FEED.subscribe([])[0])
    assert orjson.loads(ack) == orjson.loads(frame("subscribed.json"))
    (pong,) = simulator_for(FEED).reply('{"event":"ping","cid":1234}')
    assert orjson.loads(pong)["cid"] == 1234


def test_snapshot_counts_each_position_once() -> None:
    parsed = FEED.parse(frame("snapshot_multi.json"), SNAPSHOT, RECEIVED)
    btc, eth = parsed.events
    # Position 145400868, tBTCF0:USTF0: trigger row (IS_MATCH 0), AMOUNT +0.0425 = a long
    # died; price = PRICE_ACQUIRED 26550 (not BASE_PRICE 27113, the entry price);
    # USD = 0.0425 x 26550 = 1128.375. Its execution row (IS_MATCH 1) adds nothing.
    assert (btc.exchange, btc.symbol, btc.coin, btc.quote) == (
        "bitfinex",
        "tBTCF0:USTF0",
        "BTC",
        "USDT",
    )
    assert btc.contract_type == "linear"
    assert btc.side == "long"
    assert btc.price == 26550
    assert btc.quantity == 0.0425
    assert btc.notional_usd == pytest.approx(1128.375, rel=1e-12)
    assert btc.ts == 1609144352338
    assert btc.id == "145400868"  # POS_ID
    # Position 145400869, margin pair tETHUSD: AMOUNT -1.5 = a short died at 741.5;
    # USD = 1.5 x 741.5 = 1112.25; the fractional TIME_MS is truncated to whole ms.
    assert (eth.symbol, eth.coin, eth.quote, eth.side) == ("tETHUSD", "ETH", "USD", "short")
    assert (eth.price, eth.quantity, eth.notional_usd) == (741.5, 1.5, 1112.25)
    assert eth.ts == 1609144352338
    assert eth.id == "145400869"
    # tBTCEUR has no USD value.
    assert [r.reason for r in parsed.rejects] == ["quote_not_usd"]
    assert "tBTCEUR" in parsed.rejects[0].detail


def test_update_for_a_symbol_missing_from_the_snapshot() -> None:
    (event,) = FEED.parse(frame("update.json"), SNAPSHOT, RECEIVED).events
    # tSUIF0:USTF0: AMOUNT -1200 = a short died; USD = 1200 x 1.3575 = 1629.
    assert (event.symbol, event.coin, event.quote, event.side) == (
        "tSUIF0:USTF0",
        "SUI",
        "USDT",
        "short",
    )
    assert (event.price, event.quantity) == (1.3575, 1200)
    assert event.notional_usd == pytest.approx(1629, rel=1e-12)
    assert (event.ts, event.id) == (1609144360001, "145400871")


LIVE_MATCH = "live_match_first.json"
LIVE_TRIGGER = "live_trigger_without_price.json"


def test_live_trigger_without_price_pairs_with_its_earlier_execution_row() -> None:
    """Captured live (tardis-node's tests; their recording appends its channel name, dropped
    here): the execution row at 235.52 came one frame before the price-less trigger row."""
    pairing = bitfinex.Pairing()
    first = pairing(frame(LIVE_MATCH), SNAPSHOT, 1594036710600)
    assert first.events == [] and first.rejects == []  # held for its trigger
    second = pairing(frame(LIVE_TRIGGER), SNAPSHOT, 1594036710601)
    assert second.rejects == []
    (event,) = second.events
    # Position 143679087: AMOUNT -8.6007 ETH = a short died; the whole position at the
    # execution price 235.52: USD = 8.6007 x 235.52 = 2025.636864; time of the trigger.
    assert_event(
        event,
        id="143679087",
        exchange="bitfinex",
        symbol="tETHF0:USTF0",
        coin="ETH",
        quote="USDT",
        contract_type="linear",
        side="short",
        price=235.52,
        quantity=8.6007,
        notional_usd=2025.636864,
        ts=1594036710534,
        received_ts=1594036710601,
    )
    # A later execution row of the same position is not counted again.
    again = pairing(frame(LIVE_MATCH), SNAPSHOT, 1594036710700)
    assert again.events == [] and again.rejects == []


def test_trigger_first_then_executions_at_their_weighted_price() -> None:
    pairing = bitfinex.Pairing()
    trigger = '[907,[["pos",7,1594036710000,null,"tBTCF0:USTF0",1,30000,null,0,1,null,null]]]'
    executions = (
        '[907,[["pos",7,1594036710100,null,"tBTCF0:USTF0",0.4,30000,null,1,1,null,25000],'
        '["pos",7,1594036710101,null,"tBTCF0:USTF0",0.6,30000,null,1,1,null,25500]]]'
    )
    assert pairing(trigger, SNAPSHOT, 1594036710050).events == []
    (event,) = pairing(executions, SNAPSHOT, 1594036710150).events
    # 1 BTC long died; price = (0.4 x 25000 + 0.6 x 25500) / 1.0 = 25300; USD 25300.
    assert_event(event, id="7", side="long", price=25300.0, quantity=1.0, notional_usd=25300.0)
    assert event.ts == 1594036710000


def test_after_the_horizon_executions_count_alone_and_a_bare_trigger_at_its_entry_price() -> None:
    pairing = bitfinex.Pairing(horizon_ms=10_000)
    assert pairing(frame(LIVE_MATCH), SNAPSHOT, 1594036710600).events == []
    other = '[907,[["pos",8,1594036710000,null,"tBTCF0:USTF0",-0.5,30000,null,0,1,null,null]]]'
    assert pairing(other, SNAPSHOT, 1594036710700).events == []
    assert pairing(frame("heartbeat.json"), SNAPSHOT, 1594036719000).events == []  # < 10 s
    parsed = pairing(frame("heartbeat.json"), SNAPSHOT, 1594036720700)  # heartbeats settle
    # The execution row alone: 4.56671421 ETH at 235.52 = 1075.5525307392 USD.
    event, bare = parsed.events
    assert_event(
        event,
        id="143679087",
        side="short",
        price=235.52,
        quantity=4.56671421,
        notional_usd=1075.5525307392,
        ts=1594036710543,
    )
    # The bare trigger: no execution seen, so its entry price (BASE_PRICE) values it, an
    # estimate rather than a lost position: 0.5 BTC short at 30000 = 15000 USD.
    assert parsed.rejects == []
    assert_event(bare, id="8", side="short", price=30000.0, quantity=0.5, notional_usd=15000.0)
    assert pairing.state.held == {}


def test_flush_settles_what_is_held() -> None:
    pairing = bitfinex.Pairing()
    assert pairing(frame(LIVE_MATCH), SNAPSHOT, 1594036710600).events == []
    (event,) = pairing.flush(SNAPSHOT, 1594036710601).events
    assert (event.id, event.quantity, event.price) == ("143679087", 4.56671421, 235.52)
    assert pairing.state.held == {}
    assert pairing.flush(SNAPSHOT, 1594036710602).events == []


def test_one_frame_alone_settles_at_once() -> None:
    (event,) = FEED.parse(frame(LIVE_MATCH), SNAPSHOT, RECEIVED).events
    assert (event.id, event.quantity, event.price) == ("143679087", 4.56671421, 235.52)
    # The live trigger alone (no execution row in sight) counts at its entry price:
    # 8.6007 ETH short x 222.248906484356 = 1911.496186...
    parsed = FEED.parse(frame(LIVE_TRIGGER), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (alone,) = parsed.events
    assert (alone.id, alone.side, alone.quantity, alone.price) == (
        "143679087",
        "short",
        8.6007,
        222.248906484356,
    )
    assert alone.notional_usd == pytest.approx(8.6007 * 222.248906484356, rel=1e-12)


class _Publisher:
    def __init__(self) -> None:
        self.values: list[tuple[str, dict]] = []

    def submit(self, topic: str, key: str, value: bytes) -> bool:
        self.values.append((topic, orjson.loads(value)))
        return True


async def test_the_pipeline_keeps_one_pairing_across_frames() -> None:
    publisher = _Publisher()
    topics = Topics.with_prefix("")
    pipeline = FeedPipeline(
        FEED,
        InstrumentBook(FEED, url=""),
        publisher,  # type: ignore[arg-type]
        topics,
        CollectorMetrics(),
    )
    assert await pipeline.on_frame(frame(LIVE_MATCH), 1594036710600) == []
    (event,) = await pipeline.on_frame(frame(LIVE_TRIGGER), 1594036710601)
    assert (event.id, event.quantity, event.price) == ("143679087", 8.6007, 235.52)
    liquidations = [v for t, v in publisher.values if t == topics.liquidations]
    assert [v["id"] for v in liquidations] == ["143679087"]
    assert not [v for t, v in publisher.values if t == topics.deadletter]


def test_bad_rows_are_rejected_with_reasons() -> None:
    parsed = FEED.parse(frame("update_bad.json"), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [
        "malformed_item",  # a short row
        "malformed_item",  # not a row
        "quantity_not_positive",  # AMOUNT 0
        "quantity_not_finite",  # "NaN"
        "price_not_positive",  # negative price
        "trigger_without_price",  # PRICE_ACQUIRED and BASE_PRICE null, no execution row
    ]


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
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


@pytest.mark.parametrize("text", ['"pos"', "[91684]", '[91684,{"a":1}]', "[1, 2, 3]"])
def test_wrong_shapes_are_rejected(text: str) -> None:
    parsed = FEED.parse(text, SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == ["unexpected_shape"]


def test_empty_snapshot_yields_nothing() -> None:
    parsed = FEED.parse("[91684,[]]", SNAPSHOT, RECEIVED)
    assert parsed.events == [] and parsed.rejects == []


@pytest.mark.parametrize(
    ("symbol", "coin", "quote"),
    [
        ("tBTCF0:USTF0", "BTC", "USDT"),
        ("tETHUSD", "ETH", "USD"),
        ("tBTCUST", "BTC", "USDT"),
        ("tDOGE:USD", "DOGE", "USD"),
    ],
)
def test_symbols(symbol: str, coin: str, quote: str) -> None:
    assert bitfinex.instrument_from_symbol(symbol) == Instrument(symbol, coin, quote, "linear")


def test_instruments_from_rest() -> None:
    assert FEED.instruments_from_rest is not None
    instruments = FEED.instruments_from_rest(orjson.loads(frame("rest_futures_pairs.json")))
    assert sorted(instruments) == [
        "tBTCF0:USTF0",
        "tETHF0:USTF0",
        "tEURF0:USTF0",
        "tSOLF0:USTF0",
        "tXAUTF0:USTF0",
    ]
    assert instruments["tBTCF0:USTF0"] == SNAPSHOT["tBTCF0:USTF0"]
    with pytest.raises(ValueError):
        FEED.instruments_from_rest({"error": "ratelimit"})


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
    assert event.id == str(seq)


def test_normalize_pairs_rows_across_lines_and_settles_held_rows_at_the_end() -> None:
    """`liqstream normalize` keeps one parser for its whole input, as the collector does: the
    live execution row and its later price-less trigger row give the one hand-computed event,
    and an execution row still waiting for its trigger at the end of input is counted alone."""
    lines = frame(LIVE_MATCH).strip() + "\n" + frame(LIVE_TRIGGER).strip() + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "stream", "normalize", "--exchange", "bitfinex"],
        input=lines.encode(),
        capture_output=True,
        check=True,
    )
    (event,) = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert (event["id"], event["side"], event["price"], event["quantity"]) == (
        "143679087",
        "short",
        235.52,
        8.6007,
    )
    assert event["notional_usd"] == pytest.approx(2025.636864, rel=1e-12)
    assert result.stderr.strip() == b""

    held = subprocess.run(
        [sys.executable, "-m", "stream", "normalize", "--exchange", "bitfinex"],
        input=frame(LIVE_MATCH).strip().encode() + b"\n",
        capture_output=True,
        check=True,
    )
    (alone,) = [orjson.loads(line) for line in held.stdout.splitlines()]
    assert alone["price"] == 235.52 and alone["side"] == "short"
