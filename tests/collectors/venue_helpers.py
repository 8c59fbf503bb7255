"""Shared by the venue tests: fixtures by name, and field-by-field event checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
