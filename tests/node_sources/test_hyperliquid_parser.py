"""The pure parser of a Hyperliquid node's fills lines, on lines in the documented shapes.

Values are worked out by hand from the fixture lines (tests/collectors/fixtures/
hyperliquid_node), written in the layout of the node README's `--write-fills` and
`--batch-by-block` outputs and the API fills format.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from stream.node_sources.hyperliquid import (
    instrument,
    may_hold_liquidation,
    parse_line,
    render_fill,
)

FIXTURES = Path(__file__).parents[1] / "collectors" / "fixtures" / "hyperliquid_node"
RECEIVED = 1_753_606_213_000


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def test_liquidated_long_counts_once_counterparty_and_ordinary_fills_do_not() -> None:
    own, counterparty, ordinary, *_ = lines("node_fills.jsonl")
    (event,) = parse_line(own, RECEIVED).events
    # side A (a sell) closes the liquidated long of startPosition +0.5
    assert event.exchange == "hyperliquid"
    assert event.symbol == "BTC" and event.coin == "BTC" and event.quote == "USDC"
    assert event.contract_type == "linear"
    assert event.side == "long"
    assert event.quantity == 0.5
    assert event.price == 97_000.0
    assert event.notional_usd == 48_500.0  # 0.5 x 97,000
    assert event.ts == 1_753_606_210_042
    assert event.received_ts == RECEIVED
    # the liquidatedUser is written checksummed, the line's user in lower case: same user
    assert event.id == "hyperliquid:161270588369408:0x5b5d51203a0f9079f8aeb098a6523a13f298c060"
    for other in (counterparty, ordinary):
        parsed = parse_line(other, RECEIVED)
        assert parsed.events == [] and parsed.rejects == []


def test_kilo_coin_short() -> None:
    (event,) = parse_line(lines("node_fills.jsonl")[3], RECEIVED).events
    # kPEPE: 120,000 lots of 1,000 PEPE at 0.0125 USDC per lot; side B closes a short of -250,000
    assert event.symbol == "kPEPE" and event.coin == "PEPE"
    assert event.side == "short"
    assert event.quantity == 120_000_000.0
    assert event.price == pytest.approx(0.0000125)
    assert event.notional_usd == pytest.approx(1_500.0)  # 120,000 x 0.0125


def test_hip3_perpetual_keeps_its_dex_in_the_symbol() -> None:
    (event,) = parse_line(lines("node_fills.jsonl")[4], RECEIVED).events
    assert event.symbol == "xyz:NVDA" and event.coin == "NVDA"
    assert event.side == "long"
    assert event.quantity == 3.5
    assert event.notional_usd == pytest.approx(630.7)  # 3.5 x 180.2


def test_block_batched_line() -> None:
    block, empty_block = lines("node_fills_by_block.jsonl")
    (event,) = parse_line(block, RECEIVED).events
    # the liquidated short's fill (side B, startPosition -2.0); the maker's side and an
    # ordinary SOL fill in the same block are not events
    assert event.symbol == "ETH" and event.side == "short"
    assert event.quantity == 2.0
    assert event.notional_usd == 7_601.0  # 2.0 x 3,800.5
    assert event.id == "hyperliquid:700000000000001:0x31ca8395cf837de08b24da3f660e77761dfb974b"
    parsed = parse_line(empty_block, RECEIVED)
    assert parsed.events == [] and parsed.rejects == []


def test_prefilter_keeps_every_liquidation_line() -> None:
    flags = [may_hold_liquidation(line) for line in lines("node_fills.jsonl")]
    assert flags == [True, True, False, True, True]


def _own(**changes: object) -> str:
    user, fill = orjson.loads(lines("node_fills.jsonl")[0])
    fill.update(changes)
    return orjson.dumps([user, fill]).decode()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "invalid_json"),
        ("42", "unexpected_shape"),
        ('{"block_number": 1}', "unexpected_shape"),
        ('["0xabc"]', "unexpected_shape"),
        ('["0xabc", {"coin": "BTC", "liquidation": "yes"}]', "unexpected_shape"),
        (_own(side="B"), "side_inconsistent"),  # a buy cannot close a long
        (_own(side="X"), "unexpected_shape"),
        (_own(coin="@107"), "unexpected_shape"),  # spot is never liquidated
        (_own(coin=["BTC"]), "unexpected_shape"),
        (_own(sz="lots"), "invalid_number"),
        (_own(px=None), "invalid_number"),
        (_own(tid=True), "invalid_number"),
        (_own(sz="0"), "quantity_not_positive"),
        (_own(time=1753606210), "ts_out_of_range"),  # seconds, not ms
    ],
)
def test_bad_lines_are_rejected_with_a_reason(text: str, reason: str) -> None:
    parsed = parse_line(text, RECEIVED)
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == [reason]


def test_missing_start_position_falls_back_to_the_fill_side() -> None:
    user, fill = orjson.loads(lines("node_fills.jsonl")[0])
    del fill["startPosition"]
    (event,) = parse_line(orjson.dumps([user, fill]).decode(), RECEIVED).events
    assert event.side == "long"


def test_instrument_rules() -> None:
    assert instrument("BTC") is not None and instrument("BTC").units == 1  # type: ignore[union-attr]
    assert instrument("kSHIB").coin == "SHIB"  # type: ignore[union-attr]
    assert instrument("PURR/USDC") is None and instrument("@1") is None and instrument("") is None


@pytest.mark.parametrize("side", ["long", "short"])
def test_render_round_trip(side: str) -> None:
    own, other = render_fill("0xabc", "ETH", side, 3_000.0, 1.5, 1_753_606_210_000, 42)
    (event,) = parse_line(own, RECEIVED).events
    assert (event.side, event.quantity, event.notional_usd) == (side, 1.5, 4_500.0)
    assert parse_line(other, RECEIVED).events == []
