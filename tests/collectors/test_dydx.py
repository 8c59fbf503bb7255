"""dYdX v4: LIQUIDATED trades only, taker side, ISO timestamps, the 32-market subscription cap."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import dydx
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from stream.simulators import simulator_for
from stream.simulators.dydx import FakeSession, iso
from tests.collectors.venue_helpers import assert_round_trip

FIXTURES = Path(__file__).parent / "fixtures" / "dydx"
RECEIVED = 1_789_652_403_000
(FEED,) = dydx.FEEDS
SNAPSHOT = bundled_snapshot("dydx")


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_feed() -> None:
    assert (FEED.name, FEED.exchange) == ("dydx", "dydx")
    assert FEED.url == "wss://indexer.dydx.trade/v4/ws"
    assert FEED.needs_symbols
    assert (
        FEED.ping_text is None and simulator_for(FEED).heartbeat() is None
    )  # websocket-level pings
    assert len(SNAPSHOT) <= dydx.MAX_MARKETS


def test_subscribe_one_message_per_market() -> None:
    assert FEED.subscribe(["ETH-USD", "BTC-USD"]) == [
        '{"type":"subscribe","channel":"v4_trades","id":"BTC-USD"}',
        '{"type":"subscribe","channel":"v4_trades","id":"ETH-USD"}',
    ]


def test_limits_and_replies_as_the_indexer_defines_them() -> None:
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    assert per_symbol.limits.topics_per_connection == 32
    assert per_symbol.limits.topics_per_message == 1
    assert FEED.replays_on_subscribe  # its replay is de-duplicated across restarts
    assert per_symbol.request("unsubscribe", ["ETH-USD"], "7") == (
        '{"type":"unsubscribe","channel":"v4_trades","id":"ETH-USD"}'
    )
    ok = per_symbol.read_reply(frame("subscribed_replay.json"))
    assert ok is not None and ok.ok and ok.op == "subscribe" and ok.topics == ("ETH-USD",)
    refused = per_symbol.read_reply(frame("error.json"))
    assert refused is not None and not refused.ok
    assert refused.rejected == ("NOPE-USD",)
    assert refused.reason.startswith("Invalid subscribe message: channel v4_trades, id NOPE-USD")
    assert per_symbol.read_reply(frame("channel_data.json")) is None


def test_fake_session_enforces_32_markets_per_connection() -> None:
    session = FakeSession(frozenset({"NOPE-USD"}))
    for n in range(32):
        _, new = session.reply(FEED.subscribe([f"C{n:03d}-USD"])[0])
        assert new == [f"C{n:03d}-USD"]
    (error,), new = session.reply(FEED.subscribe(["C999-USD"])[0])
    assert new == [] and "limit=32" in orjson.loads(error)["message"]
    (error,), _ = session.reply(FEED.subscribe(["C000-USD"])[0])
    assert "already subscribed" in orjson.loads(error)["message"]
    per_symbol = FEED.per_symbol
    assert per_symbol is not None
    again = per_symbol.read_reply(error)
    assert again is not None and again.ok and again.topics == ("C000-USD",)
    session.reply(per_symbol.request("unsubscribe", ["C000-USD"], ""))
    (error,), _ = session.reply(FEED.subscribe(["NOPE-USD"])[0])
    reply = per_symbol.read_reply(error)
    assert reply is not None and reply.rejected == ("NOPE-USD",)


def test_fake_server_replays_on_subscribe() -> None:
    (reply,) = simulator_for(FEED).reply(FEED.subscribe(["BTC-USD"])[0])
    message = orjson.loads(reply)
    assert (message["type"], message["id"]) == ("subscribed", "BTC-USD")
    parsed = FEED.parse(reply, SNAPSHOT, RECEIVED)
    assert parsed.events == [] and parsed.rejects == []


def test_channel_data_keeps_liquidations_only() -> None:
    parsed = FEED.parse(frame("channel_data.json"), SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    long_, short = parsed.events
    # SELL taker = the liquidation order sold = a long died; 0.0004 BTC x 75974 = 30.3896 USD.
    assert (long_.exchange, long_.symbol, long_.coin, long_.quote) == (
        "dydx",
        "BTC-USD",
        "BTC",
        "USD",
    )
    assert long_.contract_type == "linear"
    assert long_.side == "long"
    assert (long_.price, long_.quantity) == (75974, 0.0004)
    assert long_.notional_usd == pytest.approx(30.3896, rel=1e-12)
    assert long_.ts == 1789652387542  # 2026-09-17T13:39:47.542Z
    assert long_.id == "064e89330000000200000002"
    # BUY taker = a short died; 1.25 BTC x 76012.5 = 95015.625 USD. The LIMIT fill and the
    # DELEVERAGED fill are not liquidations of the taker and are skipped.
    assert (short.side, short.price, short.quantity, short.notional_usd) == (
        "short",
        76012.5,
        1.25,
        95015.625,
    )
    assert (short.ts, short.id) == (1789652402001, "064e8a0e0000000200000001")


def test_subscribed_replay_is_parsed_too() -> None:
    (event,) = FEED.parse(frame("subscribed_replay.json"), SNAPSHOT, RECEIVED).events
    # ETH-USD SELL 3.5 at 2411.2 = a long died; USD 8439.2.
    assert (event.symbol, event.coin, event.side) == ("ETH-USD", "ETH", "long")
    assert (event.quantity, event.price) == (3.5, 2411.2)
    assert event.notional_usd == pytest.approx(8439.2, rel=1e-12)
    assert (event.ts, event.id) == (1789652380100, "064e892f0000000200000005")


def test_batched_channel_data() -> None:
    (event,) = FEED.parse(frame("batch.json"), SNAPSHOT, RECEIVED).events
    # SOL-USD SELL 40 at 181.25 = a long died; USD 7250.
    assert (event.symbol, event.side, event.quantity, event.notional_usd) == (
        "SOL-USD",
        "long",
        40,
        7250,
    )


def test_market_missing_from_the_snapshot_is_still_normalized() -> None:
    text = frame("channel_data.json").replace('"BTC-USD"', '"TIA-USD"')
    events = FEED.parse(text, {}, RECEIVED).events
    assert [(e.symbol, e.coin, e.quote) for e in events] == [("TIA-USD", "TIA", "USD")] * 2


def test_bad_trades_are_rejected_with_reasons() -> None:
    parsed = FEED.parse(frame("bad_trades.json"), SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [
        "quantity_not_positive",  # size 0
        "quantity_not_positive",  # negative size
        "quantity_not_finite",  # "NaN"
        "ts_invalid",  # createdAt "yesterday"
        "malformed_item",  # no size
    ]
    assert all('"id":"bad' in r.detail for r in parsed.rejects)


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("connected.json", []),
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
        '{"type":"channel_data","channel":"v4_trades","id":"BTC-USD","contents":{"trades":7}}',
        '{"type":"channel_data","channel":"v4_orderbook","id":"BTC-USD","contents":{}}',
        '{"type":"channel_data","channel":"v4_trades","contents":{"trades":[]}}',
    ],
)
def test_wrong_shapes_are_rejected(text: str) -> None:
    assert [r.reason for r in FEED.parse(text, SNAPSHOT, RECEIVED).rejects] == ["unexpected_shape"]


def test_iso_timestamps() -> None:
    assert dydx.created_at_ms("2026-09-17T13:39:47.542Z") == 1789652387542
    assert (
        dydx.created_at_ms("2026-09-17T13:39:47.542999Z") == 1789652387542
    )  # truncated, not rounded
    assert dydx.created_at_ms("2026-09-17T13:39:47Z") == 1789652387000
    assert iso(1789652387542) == "2026-09-17T13:39:47.542Z"


def test_instruments_from_rest() -> None:
    assert FEED.instruments_from_rest is not None
    instruments = FEED.instruments_from_rest(orjson.loads(frame("rest_perpetual_markets.json")))
    assert instruments == {  # LUNA-USD is in final settlement: not followed
        "BTC-USD": Instrument("BTC-USD", "BTC", "USD", "linear"),
        "ETH-USD": Instrument("ETH-USD", "ETH", "USD", "linear"),
    }
    with pytest.raises(ValueError):
        FEED.instruments_from_rest({"errors": [{"msg": "rate limited"}]})


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
