"""A scope's one textual form, made and read in one place."""

from __future__ import annotations

import pytest

from stream.engine.scope import Scope, parse_scope, scope_id
from stream.engine.totals import scopes_of, totals_key


@pytest.mark.parametrize(
    ("scope", "text"),
    [
        (Scope(None, None), "*|*"),
        (Scope(None, "BTC"), "*|BTC"),
        (Scope("binance", None), "binance|*"),
        (Scope("binance", "BTC"), "binance|BTC"),
    ],
)
def test_scope_id_round_trip(scope: Scope, text: str) -> None:
    assert scope.id == scope_id(*scope) == text
    assert parse_scope(text) == scope


def test_an_event_counts_in_four_scopes_and_user_keys_keep_their_form() -> None:
    assert [parse_scope(s) for s in scopes_of("okx", "ETH")] == [
        Scope(None, None),
        Scope(None, "ETH"),
        Scope("okx", None),
        Scope("okx", "ETH"),
    ]
    assert totals_key(None, "ETH", "1h") == "*:ETH:1h"  # docs/windows.md, unchanged
