"""Shared by the venue tests: fixtures by name, and field-by-field event checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stream.simulators import simulator_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECEIVED_TS = 1_762_290_000_999


def fixture(venue: str, name: str) -> str:
    return (FIXTURES / venue / name).read_text().strip()


def assert_event(event: Any, **expected: Any) -> None:
    """Every named field equal; floats to 1e-12 relative (hand-computed values)."""
    actual = event.to_dict()
    for field, value in expected.items():
        if isinstance(value, float):
            assert actual[field] == pytest.approx(value, rel=1e-12), field
        else:
            assert actual[field] == value, field


def assert_round_trip(
    feed: Any,
    instruments: Any,
    symbol: str,
    side: str,
    price: float,
    coins: float,
    ts: int,
    seq: int,
) -> Any:
    """parse(render(...)) gives back one event with the same side, coin, time and amounts."""
    instrument = instruments[symbol]
    render = simulator_for(feed).render
    parsed = feed.parse(render(instrument, side, price, coins, ts, seq), instruments, RECEIVED_TS)
    assert parsed.rejects == []
    (event,) = parsed.events
    assert (event.side, event.coin, event.symbol, event.ts) == (side, instrument.coin, symbol, ts)
    assert event.price == pytest.approx(price, rel=1e-9)
    assert event.quantity == pytest.approx(coins, rel=1e-9)
    assert event.notional_usd == pytest.approx(price * coins, rel=1e-9)
    return event
