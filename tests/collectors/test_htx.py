"""HTX: gzip frames, ping/pong, order side -> position side, linear turnover vs coin-M contracts."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.collectors import htx
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from stream.simulators import simulator_for
from tests.collectors.venue_helpers import assert_event

FIXTURES = Path(__file__).parent / "fixtures" / "htx"
RECEIVED = 1_789_670_298_000
LINEAR, COIN, FUTURES = htx.FEEDS
LINEAR_SNAPSHOT = bundled_snapshot("htx-linear")
COIN_SNAPSHOT = bundled_snapshot("htx-coin")
FUTURES_SNAPSHOT = bundled_snapshot("htx-futures")


def frame(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_feeds() -> None:
    assert [f.name for f in htx.FEEDS] == ["htx-linear", "htx-coin", "htx-futures"]
    assert LINEAR.url == "wss://api.hbdm.com/linear-swap-notification"
    assert COIN.url == "wss://api.hbdm.com/swap-notification"
    assert FUTURES.url == "wss://api.hbdm.com/notification"
    assert FUTURES.instruments_url == "https://api.hbdm.com/api/v1/contract_contract_info"
    assert {f.exchange for f in htx.FEEDS} == {"htx"}
    assert not LINEAR.needs_symbols and not COIN.needs_symbols
    assert FUTURES.needs_symbols  # no wildcard documented for coin-margined futures
    assert LINEAR.ping_text is None  # the server pings, the client answers


def test_subscribe_is_one_wildcard_topic() -> None:
    expected = ['{"op":"sub","cid":"liqstream","topic":"public.*.liquidation_orders"}']
    assert LINEAR.subscribe([]) == expected
    assert COIN.subscribe(["BTC-USD"]) == expected


def test_coin_margined_futures_subscribe_one_topic_per_coin() -> None:
    assert FUTURES.subscribe(sorted(FUTURES_SNAPSHOT)) == [
        '{"op":"sub","cid":"liqstream","topic":"public.BTC.liquidation_orders"}',
        '{"op":"sub","cid":"liqstream","topic":"public.ETH.liquidation_orders"}',
    ]
    (ack,) = simulator_for(FUTURES).reply(FUTURES.subscribe(["BTC261225"])[0])
    assert orjson.loads(ack)["topic"] == "public.BTC.liquidation_orders"


def test_coin_margined_futures_documented_frame() -> None:
    parsed = FUTURES.parse(frame("futures_documented.json"), FUTURES_SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # BTC201225 (expired, not listed: the documented rule, 100 USD per BTC contract):
    # 26 x 100 = 2600 USD; coins = 2600 / 19674.96 = 0.13214766383260754 (the frame's own
    # `amount`); buy = a forced buy = a short died.
    assert_event(
        event,
        exchange="htx",
        symbol="BTC201225",
        coin="BTC",
        quote="USD",
        contract_type="inverse",
        side="short",
        price=19674.96,
        quantity=0.13214766383260754,
        notional_usd=2600.0,
        ts=1606293144641,
    )


def test_coin_margined_futures_instruments_from_rest() -> None:
    assert FUTURES.instruments_from_rest is not None
    payload = orjson.loads(frame("rest_contract_contract_info.json"))
    assert FUTURES.instruments_from_rest(payload) == {
        "BTC261225": Instrument("BTC261225", "BTC", "USD", "inverse", 100.0),
        "ETH261225": Instrument("ETH261225", "ETH", "USD", "inverse", 10.0),
    }
    assert htx.delivery_coin("BTC261225") == "BTC" and htx.delivery_coin("BTC-USD") == "BTC-USD"


def test_every_frame_is_gzip() -> None:
    text = frame("linear_multi.json")
    wire = simulator_for(LINEAR).encode(text)
    assert isinstance(wire, bytes) and gzip.decompress(wire).decode() == text
    assert LINEAR.decode(wire) == text
    assert LINEAR.decode(text) == text  # a text frame passes through
    with pytest.raises(ValueError):
        LINEAR.decode(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03garbage")
    with pytest.raises((ValueError, EOFError, OSError)):
        LINEAR.decode(wire[:20])


def test_ping_is_answered_with_the_same_ts_value_and_type() -> None:
    assert LINEAR.answer(frame("ping.json")) == '{"op":"pong","ts":"1492420473058"}'
    assert LINEAR.answer('{"op":"ping","ts":1492420473058}') == '{"op":"pong","ts":1492420473058}'
    assert LINEAR.answer('{"ping":18212558000}') == '{"pong":18212558000}'
    assert LINEAR.answer(frame("linear_multi.json")) is None
    assert LINEAR.answer(frame("sub_ack.json")) is None
    heartbeat = simulator_for(LINEAR).heartbeat()
    assert heartbeat is not None
    pong = orjson.loads(LINEAR.answer(heartbeat) or "")
    assert pong == {"op": "pong", "ts": orjson.loads(heartbeat)["ts"]}


def test_fake_server_acks_the_subscription() -> None:
    (ack,) = simulator_for(LINEAR).reply(LINEAR.subscribe([])[0])
    assert orjson.loads(ack)["err-code"] == 0
    assert LINEAR.parse(ack, LINEAR_SNAPSHOT, RECEIVED).events == []
    assert simulator_for(LINEAR).reply('{"op":"pong","ts":"1"}') == []


def test_linear_frame_with_two_liquidations() -> None:
    parsed = LINEAR.parse(frame("linear_multi.json"), LINEAR_SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    eth, o3 = parsed.events
    # ETH-USDT: direction buy = a forced buy = a short died. amount 5 ETH (volume 500 x 0.01);
    # USD = trade_turnover 12231.3 USDT (= 5 x 2446.26).
    assert (eth.exchange, eth.symbol, eth.coin, eth.quote) == ("htx", "ETH-USDT", "ETH", "USDT")
    assert eth.contract_type == "linear"
    assert eth.side == "short"
    assert eth.price == 2446.26
    assert eth.quantity == 5
    assert eth.notional_usd == 12231.3
    assert eth.ts == 1789670297212
    assert eth.received_ts == RECEIVED
    assert len(eth.id) == 24  # no venue id: the deterministic hash
    # O3-USDT is not in the snapshot, but the frame fixes coins and USD by itself:
    # sell = long died; 432 O3 (amount); USD = 339.4656 (= 432 x 0.7858).
    assert (o3.symbol, o3.coin, o3.quote, o3.side) == ("O3-USDT", "O3", "USDT", "long")
    assert (o3.price, o3.quantity, o3.notional_usd) == (0.7858, 432, 339.4656)
    assert o3.ts == 1639122193172


def test_coin_margined_frame_uses_the_contract_face_value() -> None:
    parsed = COIN.parse(frame("coin_btc.json"), COIN_SNAPSHOT, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    # BTC-USD: 173 contracts x 100 USD = 17300 USD; coins = 17300 / 17102.9 = 1.01152436...
    # (the frame's own `amount` says the same); buy = a short died.
    assert (event.symbol, event.coin, event.quote) == ("BTC-USD", "BTC", "USD")
    assert event.contract_type == "inverse"
    assert event.side == "short"
    assert event.price == 17102.9
    assert event.notional_usd == 17300
    assert event.quantity == pytest.approx(17300 / 17102.9, rel=1e-12)
    assert event.quantity == pytest.approx(1.0115243613656164, rel=1e-12)
    assert event.ts == 1606381842485


def test_coin_margined_contract_sizes_known_by_rule_or_rejected() -> None:
    parsed = COIN.parse(frame("coin_multi.json"), COIN_SNAPSHOT, RECEIVED)
    eth, xyz = parsed.events
    # ETH-USD (snapshot): 40 contracts x 10 USD = 400 USD; coins = 400 / 2000 = 0.2;
    # sell = a long died.
    assert (eth.symbol, eth.side, eth.notional_usd, eth.quantity) == ("ETH-USD", "long", 400, 0.2)
    # XYZ-USD (not in the snapshot): the documented rule, 10 USD per non-BTC contract:
    # 3 x 10 = 30 USD; coins = 30 / 1.5 = 20 (the frame's `amount` agrees).
    assert (xyz.symbol, xyz.coin, xyz.quote, xyz.contract_type) == (
        "XYZ-USD",
        "XYZ",
        "USD",
        "inverse",
    )
    assert (xyz.notional_usd, xyz.quantity, xyz.price) == (30, 20, 1.5)
    # A contract code outside the rule's pattern needs metadata: refresh and retry.
    assert [r.reason for r in parsed.rejects] == ["unknown_symbol"]
    assert "XYZ-USDC" in parsed.rejects[0].detail
    # With no metadata at all, BTC-USD still counts 100 USD per contract.
    (btc,) = COIN.parse(frame("coin_btc.json"), {}, RECEIVED).events
    assert btc.notional_usd == 17300


def test_bad_items_are_rejected_with_reasons() -> None:
    parsed = LINEAR.parse(frame("bad_items.json"), LINEAR_SNAPSHOT, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [
        "price_not_finite",  # NaN
        "quantity_not_positive",  # negative
        "quantity_not_positive",  # zero
        "malformed_item",  # no contract_code
        "side_invalid",  # direction "sideways"
    ]
    assert all('"direction":"' in r.detail for r in parsed.rejects)  # the item's own text


@pytest.mark.parametrize(
    ("name", "reasons"),
    [
        ("sub_ack.json", []),
        ("ping.json", []),
        ("sub_error.json", ["venue_error"]),
        ("truncated.txt", ["invalid_json"]),
    ],
)
def test_frames_without_liquidations(name: str, reasons: list[str]) -> None:
    for feed, snapshot in ((LINEAR, LINEAR_SNAPSHOT), (COIN, COIN_SNAPSHOT)):
        parsed = feed.parse(frame(name), snapshot, RECEIVED)
        assert parsed.events == []
        assert [r.reason for r in parsed.rejects] == reasons


def test_wrong_shapes_are_rejected() -> None:
    for text in ("[1, 2, 3]", '{"op":"notify","topic":"public.*.liquidation_orders"}', "{not json"):
        parsed = LINEAR.parse(text, LINEAR_SNAPSHOT, RECEIVED)
        assert parsed.events == [] and len(parsed.rejects) == 1


def test_instruments_from_rest() -> None:
    coin = COIN.instruments_from_rest(orjson.loads(frame("rest_swap_contract_info.json")))
    assert coin == {
        "BTC-USD": Instrument("BTC-USD", "BTC", "USD", "inverse", 100.0, 1),
        "ETH-USD": Instrument("ETH-USD", "ETH", "USD", "inverse", 10.0, 1),
    }
    linear = LINEAR.instruments_from_rest(
        orjson.loads(frame("rest_linear_swap_contract_info.json"))
    )
    assert linear["BTC-USDT"] == Instrument("BTC-USDT", "BTC", "USDT", "linear", 0.001, 1)
    assert linear["BTC-USDT-210625"].coin == "BTC"
    with pytest.raises(ValueError):
        COIN.instruments_from_rest({"status": "error", "err_msg": "busy"})


def test_snapshots_follow_the_documented_contract_sizes() -> None:
    assert COIN_SNAPSHOT["BTC-USD"].contract_size == 100
    assert {i.contract_size for s, i in COIN_SNAPSHOT.items() if s != "BTC-USD"} == {10}
    assert all(i.contract_type == "inverse" for i in COIN_SNAPSHOT.values())
    assert all(i.contract_type == "linear" for i in LINEAR_SNAPSHOT.values())


ROUND_TRIP = [
    (feed, symbol)
    for feed, snapshot in (
        (LINEAR, LINEAR_SNAPSHOT),
        (COIN, COIN_SNAPSHOT),
        (FUTURES, FUTURES_SNAPSHOT),
    )
    for symbol in sorted(snapshot)
]


@pytest.mark.parametrize(
    ("feed", "symbol"), ROUND_TRIP, ids=[f"{f.name}:{s}" for f, s in ROUND_TRIP]
)
@settings(max_examples=25, deadline=None)
@given(
    side=st.sampled_from(["long", "short"]),
    price=st.floats(min_value=1e-6, max_value=1e6),  # notional at most 1e9 USD: plausible
    coins=st.floats(min_value=1e-6, max_value=1e3),
    ts=st.integers(min_value=1_500_000_000_000, max_value=2_000_000_000_000),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_render_round_trip(
    feed, symbol: str, side: str, price: float, coins: float, ts: int, seq: int
) -> None:
    instruments = bundled_snapshot(feed.name)
    instrument = instruments[symbol]
    wire = simulator_for(feed).encode(
        simulator_for(feed).render(instrument, side, price, coins, ts, seq)
    )
    parsed = feed.parse(feed.decode(wire), instruments, RECEIVED)
    assert parsed.rejects == []
    (event,) = parsed.events
    assert (event.side, event.coin, event.symbol, event.ts) == (side, instrument.coin, symbol, ts)
    assert event.price == pytest.approx(price, rel=1e-9)
    assert event.quantity == pytest.approx(coins, rel=1e-9)
    assert event.notional_usd == pytest.approx(price * coins, rel=1e-9)


def test_futures_subscribe_per_coin_topic_and_read_the_answers() -> None:
    """HTX docs' own examples (Coin-M futures, "Subscribe Liquidation Order Data")."""
    per_symbol = FUTURES.per_symbol
    assert per_symbol is not None and per_symbol.limits.topics_per_message == 1
    assert {per_symbol.topic(s) for s in FUTURES_SNAPSHOT} == {
        "public.BTC.liquidation_orders",
        "public.ETH.liquidation_orders",
    }
    assert orjson.loads(
        per_symbol.request("subscribe", ["public.BTC.liquidation_orders"], "7")
    ) == {
        "op": "sub",
        "cid": "7",
        "topic": "public.BTC.liquidation_orders",
    }
    assert (
        orjson.loads(per_symbol.request("unsubscribe", ["public.EOS.liquidation_orders"], "8"))[
            "op"
        ]
        == "unsub"
    )
    ok = per_symbol.read_reply(
        '{"op":"sub","cid":"40sG903yz80oDFWr","topic":"public.BTC.liquidation_orders",'
        '"ts":1670903745088,"err-code":0}'
    )
    assert ok == htx.SubscribeReply(
        req_id="40sG903yz80oDFWr", op="subscribe", topics=("public.BTC.liquidation_orders",)
    )
    refused = per_symbol.read_reply(
        '{"op":"sub","cid":"9","topic":"public.NOPE.liquidation_orders","ts":1,'
        '"err-code":2011,"err-msg":"invalid topic public.NOPE.liquidation_orders"}'
    )
    assert refused is not None and not refused.ok
    assert refused.rejected == ("public.NOPE.liquidation_orders",)
    assert refused.reason == "err-code 2011: invalid topic public.NOPE.liquidation_orders"
    # pings and liquidation frames are not answers
    assert per_symbol.read_reply('{"op":"ping","ts":"1"}') is None
    assert per_symbol.read_reply(frame("futures_documented.json")) is None


def test_fake_futures_session_enforces_htx_rules() -> None:
    assert simulator_for(FUTURES).session is not None
    session = simulator_for(FUTURES).session(frozenset({"public.NOPE.liquidation_orders"}))
    sub = '{"op":"sub","cid":"1","topic":"public.BTC.liquidation_orders"}'
    (answer,), new = session.reply(sub)
    assert orjson.loads(answer)["err-code"] == 0 and new == ["public.BTC.liquidation_orders"]
    (answer,), new = session.reply(sub.replace("BTC", "NOPE"))
    assert orjson.loads(answer)["err-code"] != 0 and new == []
    (answer,), _ = session.reply('{"op":"unsub","cid":"2","topic":"public.ETH.liquidation_orders"}')
    assert orjson.loads(answer)["err-code"] != 0  # never subscribed here
    assert session.wants(frame("futures_documented.json"))  # a BTC topic frame
    session.reply('{"op":"unsub","cid":"3","topic":"public.BTC.liquidation_orders"}')
    assert not session.wants(frame("futures_documented.json"))
