"""Bybit v5 allLiquidation frames: position side, linear coins, inverse USD contracts."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import bybit
from stream.collectors.bybit import FEEDS, MAX_ARGS_CHARS, subscribe
from stream.collectors.instruments import bundled_snapshot
from stream.simulators import simulator_for
from stream.simulators.bybit import FakeSession
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, fixture

LINEAR, INVERSE = FEEDS
LINEAR_INSTRUMENTS = bundled_snapshot("bybit-linear")


def test_documented_frame_side_is_the_position() -> None:
    parsed = LINEAR.parse(fixture("bybit", "documented.json"), LINEAR_INSTRUMENTS, RECEIVED_TS)
    (event,) = parsed.events
    # S=Sell on Bybit = a SHORT position died. 20000 ROSE at 0.04499 = 899.8 USDT.
    assert_event(
        event,
        exchange="bybit",
        symbol="ROSEUSDT",
        coin="ROSE",
        quote="USDT",
        contract_type="linear",
        side="short",
        price=0.04499,
        quantity=20000.0,
        notional_usd=899.8,
        ts=1739502302929,
    )


def test_every_item_of_a_frame_and_1000_prefix() -> None:
    text = fixture("bybit", "multi_item_1000pepe.json")
    first, second = LINEAR.parse(text, LINEAR_INSTRUMENTS, RECEIVED_TS).events
    # Buy = long died. 500000 lots of 1000 PEPE = 5e8 PEPE at 0.0123/1000 = 1.23e-5;
    # notional 500000 * 0.0123 = 6150 USDT.
    assert_event(
        first,
        coin="PEPE",
        side="long",
        quantity=5e8,
        price=1.23e-5,
        notional_usd=6150.0,
        ts=1762290000100,
    )
    # Sell = short died. 1000 * 1000 = 1e6 PEPE; 1000 * 0.0124 = 12.4 USDT.
    assert_event(second, side="short", quantity=1e6, notional_usd=12.4, ts=1762290000300)
    assert first.id != second.id


def test_inverse_size_is_usd() -> None:
    (event,) = INVERSE.parse(fixture("bybit", "inverse_btcusd.json"), {}, RECEIVED_TS).events
    # 25000 contracts of 1 USD = 25000 USD; coins = 25000 / 100000 = 0.25 BTC.
    assert_event(
        event,
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="long",
        notional_usd=25000.0,
        quantity=0.25,
        price=100000.0,
    )


def test_acks_and_pongs_yield_nothing() -> None:
    for name in ("subscribe_ack.json", "pong.json"):
        parsed = LINEAR.parse(fixture("bybit", name), {}, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("v", "NaN", "quantity_not_finite"),
        ("v", "-5", "quantity_not_positive"),
        ("p", "0", "price_not_positive"),
        ("p", None, "invalid_number"),
        ("S", "Hold", "unexpected_shape"),
        ("s", "???", "unknown_symbol"),
    ],
)
def test_bad_items_are_rejected(field: str, value: object, reason: str) -> None:
    frame = orjson.loads(fixture("bybit", "documented.json"))
    frame["data"][0][field] = value
    parsed = LINEAR.parse(orjson.dumps(frame).decode(), LINEAR_INSTRUMENTS, RECEIVED_TS)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_subscribe_respects_the_args_limit() -> None:
    symbols = [f"COIN{n}USDT" for n in range(2_000)]
    messages = subscribe(symbols)
    assert len(messages) > 1
    topics = []
    for message in messages:
        decoded = orjson.loads(message)
        assert decoded["op"] == "subscribe"
        assert len(orjson.dumps(decoded["args"])) <= MAX_ARGS_CHARS
        topics.extend(decoded["args"])
    assert topics == [f"allLiquidation.{s}" for s in symbols]
    assert LINEAR.needs_symbols and LINEAR.url == "wss://stream.bybit.com/v5/public/linear"


def test_heartbeat_and_acks_of_the_fake() -> None:
    assert LINEAR.ping_text is not None and orjson.loads(LINEAR.ping_text)["op"] == "ping"
    (pong,) = simulator_for(LINEAR).reply(LINEAR.ping_text)
    assert orjson.loads(pong)["ret_msg"] == "pong"


def test_instruments_from_rest() -> None:
    payload = {
        "result": {
            "category": "linear",
            "list": [
                {
                    "symbol": "1000PEPEUSDT",
                    "baseCoin": "1000PEPE",
                    "quoteCoin": "USDT",
                    "contractType": "LinearPerpetual",
                },
                {
                    "symbol": "BTCUSD",
                    "baseCoin": "BTC",
                    "quoteCoin": "USD",
                    "contractType": "InversePerpetual",
                },
            ],
        }
    }
    assert LINEAR.instruments_from_rest is not None
    got = LINEAR.instruments_from_rest(payload)
    assert (got["1000PEPEUSDT"].coin, got["1000PEPEUSDT"].units) == ("PEPE", 1000)
    assert got["BTCUSD"].contract_type == "inverse"


@settings(max_examples=100, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(LINEAR_INSTRUMENTS) - 1),
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=2e5),  # notional within the schema's bound
    coins=st.floats(min_value=1e-3, max_value=5e3),
)
def test_render_round_trip(index: int, side: str, price: float, coins: float) -> None:
    instrument = list(LINEAR_INSTRUMENTS.values())[index]
    text = simulator_for(LINEAR).render(instrument, side, price, coins, 1_762_290_000_000, 1)
    (event,) = LINEAR.parse(text, LINEAR_INSTRUMENTS, RECEIVED_TS).events
    assert (event.side, event.coin) == (side, instrument.coin)
    assert event.quantity == pytest.approx(coins, rel=1e-9)
    assert event.notional_usd == pytest.approx(price * coins, rel=1e-9)


def test_subscribe_answers_are_read_with_the_refused_topic() -> None:
    per_symbol = LINEAR.per_symbol
    assert per_symbol is not None
    assert per_symbol.limits.chars_per_connection == 21_000
    assert per_symbol.limits.topics_per_message == 10  # as tardis-node sends them
    assert orjson.loads(per_symbol.request("subscribe", ["allLiquidation.BTCUSDT"], "7")) == {
        "req_id": "7",
        "op": "subscribe",
        "args": ["allLiquidation.BTCUSDT"],
    }
    ok = per_symbol.read_reply(fixture("bybit", "subscribe_ack.json"))
    assert ok is not None and ok.ok and ok.req_id is None and ok.op == "subscribe"
    refused = per_symbol.read_reply(
        '{"success":false,"ret_msg":"error:handler not found,topic:allLiquidation.X",'
        '"conn_id":"d6d7b2ac","req_id":"12","op":"subscribe"}'
    )
    assert refused is not None and not refused.ok
    assert (refused.req_id, refused.rejected) == ("12", ("allLiquidation.X",))
    assert refused.reason == "error:handler not found,topic:allLiquidation.X"
    assert per_symbol.read_reply(fixture("bybit", "pong.json")) is None
    assert per_symbol.read_reply(fixture("bybit", "documented.json")) is None


def test_fake_bybit_enforces_the_connection_limit_and_refuses_unknown_topics() -> None:
    session = FakeSession(frozenset({"allLiquidation.NOPEUSDT"}))
    topics = [f"allLiquidation.COIN{n:04d}USDT" for n in range(1_000)]  # 23 characters each
    accepted: list[str] = []
    refusal = ""
    for start in range(0, len(topics), 10):
        (answer,), new = session.reply(bybit.request("subscribe", topics[start : start + 10], "1"))
        if not orjson.loads(answer)["success"]:
            refusal = orjson.loads(answer)["ret_msg"]
            break
        accepted += new
    assert sum(len(t) for t in accepted) <= 21_000 < sum(len(t) for t in accepted) + 230
    assert "21000" in refusal
    session = FakeSession(frozenset({"allLiquidation.NOPEUSDT"}))
    batch = ["allLiquidation.BTCUSDT", "allLiquidation.NOPEUSDT"]
    (answer,), new = session.reply(bybit.request("subscribe", batch, "9"))
    assert new == [] and session.topics == set()  # none of the batch
    assert orjson.loads(answer) == {
        "success": False,
        "ret_msg": "error:handler not found,topic:allLiquidation.NOPEUSDT",
        "conn_id": "fake",
        "req_id": "9",
        "op": "subscribe",
    }


def test_instrument_pages_follow_next_page_cursor() -> None:
    url = "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000"
    page = {"retCode": 0, "result": {"list": [], "nextPageCursor": "first%3DA%26last%3DB"}}
    assert LINEAR.next_page(url, page) == (
        "https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000"
        "&cursor=first%253DA%2526last%253DB"
    )
    last = {"retCode": 0, "result": {"list": [], "nextPageCursor": ""}}
    assert LINEAR.next_page(url, last) is None
    with pytest.raises(ValueError, match="10001"):
        assert LINEAR.instruments_from_rest is not None
        LINEAR.instruments_from_rest({"retCode": 10001, "retMsg": "params error", "result": {}})
