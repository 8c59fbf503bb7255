"""Zoomex allLiquidation frames (Bybit's protocol, Zoomex's id and endpoints), worked by hand."""

from __future__ import annotations

import orjson
import pytest

from stream.collectors import bybit, zoomex
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.registry import FEEDS as REGISTERED
from stream.schema import event_id
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, assert_round_trip, fixture

LINEAR, INVERSE = zoomex.FEEDS
LINEAR_INSTRUMENTS = bundled_snapshot("zoomex-linear")
INVERSE_INSTRUMENTS = bundled_snapshot("zoomex-inverse")


def test_documented_frame_side_is_the_position() -> None:
    text = fixture("zoomex", "documented.json")
    parsed = LINEAR.parse(text, LINEAR_INSTRUMENTS, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    # The docs' example (values as printed there): S=Sell = a short position died.
    # 20000 BTC at 0.04499 = 899.8 USDT.
    assert_event(
        event,
        exchange="zoomex",
        symbol="BTCUSDT",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="short",
        price=0.04499,
        quantity=20000.0,
        notional_usd=899.8,
        ts=1739502302929,
        received_ts=RECEIVED_TS,
    )
    # the id a Zoomex event gets, never Bybit's for the same frame
    assert event.id == event_id("zoomex", "BTCUSDT", 1739502302929, "short", 0.04499, 20000.0)
    (on_bybit,) = bybit.parse_linear(text, LINEAR_INSTRUMENTS, RECEIVED_TS).events
    assert on_bybit.id != event.id and on_bybit.exchange == "bybit"


def test_every_item_of_a_linear_frame() -> None:
    text = fixture("zoomex", "linear_two_items.json")
    first, second = LINEAR.parse(text, LINEAR_INSTRUMENTS, RECEIVED_TS).events
    # Buy = a long died: 1.25 ETH at 3312.4 = 4140.5 USDT.
    assert_event(first, side="long", coin="ETH", quantity=1.25, notional_usd=4140.5)
    # Sell = a short died: 0.4 ETH at 3340.1 = 1336.04 USDT.
    assert_event(second, side="short", quantity=0.4, price=3340.1, notional_usd=1336.04)
    assert first.ts == 1762290000150 and second.ts == 1762290000420


def test_inverse_size_is_usd() -> None:
    text = fixture("zoomex", "inverse_btcusd.json")
    (event,) = INVERSE.parse(text, INVERSE_INSTRUMENTS, RECEIVED_TS).events
    # 12000 contracts of 1 USD = 12000 USD; coins = 12000 / 96000 = 0.125 BTC.
    assert_event(
        event,
        exchange="zoomex",
        symbol="BTCUSD",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="long",
        notional_usd=12000.0,
        quantity=0.125,
        price=96000.0,
    )


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("v", "NaN", "quantity_not_finite"),
        ("p", "0", "price_not_positive"),
        ("p", None, "invalid_number"),
        ("S", "Hold", "unexpected_shape"),
        ("s", "???", "unknown_symbol"),
    ],
)
def test_bad_items_are_rejected(field: str, value: object, reason: str) -> None:
    frame = orjson.loads(fixture("zoomex", "documented.json"))
    frame["data"][0][field] = value
    parsed = LINEAR.parse(orjson.dumps(frame).decode(), LINEAR_INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_acks_and_pongs_yield_nothing_and_are_read_as_answers() -> None:
    for name in ("subscribe_ack.json", "pong.json"):
        parsed = LINEAR.parse(fixture("zoomex", name), {}, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []
    per_symbol = LINEAR.per_symbol
    assert per_symbol is not None
    ack = per_symbol.read_reply(fixture("zoomex", "subscribe_ack.json"))
    assert ack is not None and ack.ok and ack.req_id == "1"
    assert per_symbol.read_reply(fixture("zoomex", "pong.json")) is None


def test_zoomex_endpoints_limits_and_heartbeat() -> None:
    assert [REGISTERED["zoomex-linear"], REGISTERED["zoomex-inverse"]] == [LINEAR, INVERSE]
    assert LINEAR.url == "wss://stream.zoomex.com/v3/public/linear"
    assert INVERSE.url == "wss://stream.zoomex.com/v3/public/inverse"
    assert LINEAR.instruments_url == (
        "https://openapi.zoomex.com/cloud/trade/v3/market/instruments-info"
        "?category=linear&limit=1000"
    )
    per_symbol = LINEAR.per_symbol
    assert per_symbol is not None and per_symbol.limits.chars_per_connection == 21_000
    assert "Zoomex" in per_symbol.limits.source
    assert per_symbol.topic("BTCUSDT") == "allLiquidation.BTCUSDT"
    assert LINEAR.ping_text is not None and orjson.loads(LINEAR.ping_text)["op"] == "ping"
    (pong,) = simulator_for(LINEAR).reply(LINEAR.ping_text)
    assert orjson.loads(pong)["ret_msg"] == "pong"
    assert not LINEAR.lower_bound  # "push all liquidations"


def test_fake_zoomex_refuses_past_the_args_limit() -> None:
    assert simulator_for(LINEAR).session is not None
    session = simulator_for(LINEAR).session(frozenset())
    topics = [f"allLiquidation.COIN{n:04d}USDT" for n in range(1_000)]
    refused = False
    for start in range(0, len(topics), 10):
        (answer,), _ = session.reply(bybit.request("subscribe", topics[start : start + 10], "1"))
        if not orjson.loads(answer)["success"]:
            refused = "21000" in orjson.loads(answer)["ret_msg"]
            break
    assert refused and sum(len(t) for t in session.topics) <= 21_000


def test_instrument_pages() -> None:
    assert LINEAR.instruments_from_rest is not None
    page = orjson.loads(fixture("zoomex", "rest_instruments_linear.json"))
    got = LINEAR.instruments_from_rest(page)
    assert (got["1000PEPEUSDT"].coin, got["1000PEPEUSDT"].units) == ("PEPE", 1000)
    assert LINEAR.instruments_url is not None
    assert LINEAR.next_page(LINEAR.instruments_url, page) == (
        f"{LINEAR.instruments_url}&cursor=first%253D1000PEPEUSDT"
    )


@pytest.mark.parametrize(
    ("feed", "instruments"),
    [(LINEAR, LINEAR_INSTRUMENTS), (INVERSE, INVERSE_INSTRUMENTS)],
    ids=["linear", "inverse"],
)
@pytest.mark.parametrize("side", ["long", "short"])
def test_render_round_trip(feed: object, instruments: dict, side: str) -> None:
    for symbol in sorted(instruments):
        # inverse frames count whole USD contracts: 2 coins at 1000 USD is 2000 contracts
        event = assert_round_trip(feed, instruments, symbol, side, 1000.0, 2.0, 1762290000000, 5)
        assert event.exchange == "zoomex"
