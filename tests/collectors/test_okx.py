"""OKX liquidation-orders: every detail counts, posSide/net, contract values."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.okx import FEEDS
from stream.fake_rest import FakeRest, okx_row
from stream.simulators import simulator_for
from tests.collectors.test_shells import TOPICS, pipeline_for
from tests.collectors.venue_helpers import RECEIVED_TS, assert_event, fixture

(OKX,) = FEEDS
INSTRUMENTS = bundled_snapshot("okx")


def test_documented_frame() -> None:
    (event,) = OKX.parse(fixture("okx", "documented.json"), INSTRUMENTS, RECEIVED_TS).events
    # IOST-USDT-SWAP ctVal = 1000 IOST: 13 contracts = 13000 IOST at bkPx 0.007831
    # = 101.803 USDT. posSide short = a short died.
    assert_event(
        event,
        exchange="okx",
        symbol="IOST-USDT-SWAP",
        coin="IOST",
        quote="USDT",
        contract_type="linear",
        side="short",
        price=0.007831,
        quantity=13000.0,
        notional_usd=101.803,
        ts=1692266434010,
    )


def test_every_detail_net_position_and_inverse() -> None:
    text = fixture("okx", "several_details_net_and_inverse.json")
    net, long_, inverse = OKX.parse(text, INSTRUMENTS, RECEIVED_TS).events
    # net + sell = a long died. 250 * 0.01 BTC = 2.5 BTC at 100000 = 250000 USDT.
    assert_event(net, side="long", quantity=2.5, notional_usd=250_000.0, ts=1762290000100)
    # 3 * 0.01 = 0.03 BTC at 100500 = 3015 USDT.
    assert_event(long_, side="long", quantity=0.03, notional_usd=3015.0)
    # BTC-USD-SWAP: 40 contracts * 100 USD = 4000 USD; 4000 / 99000 BTC.
    assert_event(
        inverse,
        contract_type="inverse",
        quote="USD",
        side="short",
        notional_usd=4000.0,
        quantity=4000 / 99000,
    )


def test_acks_and_pongs() -> None:
    for text in (fixture("okx", "subscribe_ack.json"), "pong"):
        parsed = OKX.parse(text, INSTRUMENTS, RECEIVED_TS)
        assert parsed.events == [] and parsed.rejects == []
    assert simulator_for(OKX).reply("ping") == ["pong"]
    (message,) = OKX.subscribe([])
    assert orjson.loads(message) == {
        "op": "subscribe",
        "args": [
            {"channel": "liquidation-orders", "instType": "SWAP"},
            {"channel": "liquidation-orders", "instType": "FUTURES"},
        ],
    }


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sz": "NaN"}, "quantity_not_finite"),
        ({"sz": "-1"}, "quantity_not_positive"),
        ({"bkPx": "x"}, "invalid_number"),
        ({"posSide": "sideways"}, "unexpected_shape"),
    ],
)
def test_bad_details(change: dict, reason: str) -> None:
    frame = orjson.loads(fixture("okx", "documented.json"))
    frame["data"][0]["details"][0].update(change)
    parsed = OKX.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert [r.reason for r in parsed.rejects] == [reason]


def test_unknown_instrument_needs_metadata() -> None:
    frame = orjson.loads(fixture("okx", "documented.json"))
    frame["data"][0]["instId"] = "NEW-USDT-SWAP"
    parsed = OKX.parse(orjson.dumps(frame).decode(), INSTRUMENTS, RECEIVED_TS)
    assert [r.reason for r in parsed.rejects] == ["unknown_symbol"]


def test_instruments_from_rest() -> None:
    payload = {
        "data": [
            {"instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctType": "linear", "ctValCcy": "BTC"},
            {"instId": "BTC-USD-SWAP", "ctVal": "100", "ctType": "inverse", "ctValCcy": "USD"},
        ]
    }
    assert OKX.instruments_from_rest is not None
    got = OKX.instruments_from_rest(payload)
    assert got["BTC-USDT-SWAP"].contract_size == 0.01
    assert (got["BTC-USD-SWAP"].contract_type, got["BTC-USD-SWAP"].quote) == ("inverse", "USD")


@pytest.mark.parametrize("symbol", sorted(INSTRUMENTS))
def test_render_round_trip(symbol: str) -> None:
    instrument = INSTRUMENTS[symbol]
    price = 123.456
    coins = (
        40 * instrument.contract_size / price
        if instrument.contract_type == "inverse"
        else 7 * instrument.contract_size
    )
    (event,) = OKX.parse(
        simulator_for(OKX).render(instrument, "long", price, coins, 1_762_290_000_000, 1),
        INSTRUMENTS,
        RECEIVED_TS,
    ).events
    assert event.side == "long" and event.coin == instrument.coin
    assert event.quantity == pytest.approx(coins, rel=1e-9)
    assert event.notional_usd == pytest.approx(coins * price, rel=1e-9)


def test_instruments_are_requested_per_inst_type() -> None:
    assert OKX.instruments_url == "https://www.okx.com/api/v5/public/instruments"
    assert OKX.instrument_requests("http://h/api/v5/public/instruments?instType=SWAP") == [
        "http://h/api/v5/public/instruments?instType=SWAP",
        "http://h/api/v5/public/instruments?instType=FUTURES",
    ]
    with pytest.raises(ValueError, match="51000"):
        assert OKX.instruments_from_rest is not None
        OKX.instruments_from_rest({"code": "51000", "msg": "Parameter instType error", "data": []})


async def test_a_futures_frame_of_an_instrument_only_rest_lists_becomes_an_event(
    tmp_path: Path,
) -> None:
    rest = FakeRest()
    rest.okx["SWAP"] = [okx_row("BTC-USDT-SWAP", "SWAP", "0.01", "linear")]
    rest.okx["FUTURES"] = [
        okx_row("BTC-USD-270326", "FUTURES", "100", "inverse"),
        okx_row("ETH-USDT-270326", "FUTURES", "0.1", "linear"),
    ]
    await rest.start()
    try:
        book = InstrumentBook(OKX, tmp_path, url=rest.url("okx"))
        pipeline, publisher = pipeline_for(OKX, book)
        # The documented frame's shape for a FUTURES instrument (expiring 2027-03-26).
        frame = {
            "arg": {"channel": "liquidation-orders", "instType": "FUTURES"},
            "data": [
                {
                    "details": [
                        {
                            "bkLoss": "0",
                            "bkPx": "95000",
                            "ccy": "",
                            "posSide": "long",
                            "side": "sell",
                            "sz": "3",
                            "ts": "1762290000000",
                        }
                    ],
                    "instFamily": "BTC-USD",
                    "instId": "BTC-USD-270326",
                    "instType": "FUTURES",
                    "uly": "BTC-USD",
                }
            ],
        }
        (event,) = await pipeline.on_frame(orjson.dumps(frame).decode(), RECEIVED_TS)
        # Inverse: 3 contracts of 100 USD = 300 USD; 300 / 95,000 = 0.0031578947... BTC.
        assert_event(
            event,
            exchange="okx",
            symbol="BTC-USD-270326",
            coin="BTC",
            quote="USD",
            contract_type="inverse",
            side="long",
            price=95000.0,
            quantity=300 / 95000,
            notional_usd=300.0,
        )
        assert "ETH-USDT-270326" in book and "BTC-USDT-SWAP" in book
        assert sorted(rest.requests) == [
            "/api/v5/public/instruments?instType=FUTURES",
            "/api/v5/public/instruments?instType=SWAP",
        ]
        assert publisher.values(TOPICS.deadletter) == []
    finally:
        await rest.stop()
