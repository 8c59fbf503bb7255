"""Brute-force rolling totals: recompute every window from the list of accepted events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

FUTURE_MS = 5 * 60_000


def accepted(event: dict[str, Any], now_ms: int, resolution_ms: int, longest_buckets: int) -> bool:
    bucket = event["ts"] // resolution_ms
    if bucket <= now_ms // resolution_ms - longest_buckets:
        return False
    return event["ts"] <= now_ms + FUTURE_MS


def brute_force_totals(
    events: Iterable[dict[str, Any]],
    at_ms: int,
    windows_ms: Mapping[str, int],
    resolution_ms: int,
) -> dict[tuple[str | None, str | None, str], dict[str, Any]]:
    """{(exchange, coin, window): record fields} for every non-empty window at `at_ms`."""
    events = list(events)
    now_bucket = at_ms // resolution_ms
    result: dict[tuple[str | None, str | None, str], dict[str, Any]] = {}
    for window, window_ms in windows_ms.items():
        n = window_ms // resolution_ms
        inside = [e for e in events if now_bucket - n < e["ts"] // resolution_ms <= now_bucket]
        scopes: dict[tuple[str | None, str | None], list[dict[str, Any]]] = {}
        for e in inside:
            for scope in (
                (None, None),
                (None, e["coin"]),
                (e["exchange"], None),
                (e["exchange"], e["coin"]),
            ):
                scopes.setdefault(scope, []).append(e)
        for (exchange, coin), members in scopes.items():
            longs = [e for e in members if e["side"] == "long"]
            shorts = [e for e in members if e["side"] == "short"]
            largest = min(members, key=lambda e: (-e["notional_usd"], e["ts"], e["id"]))
            result[(exchange, coin, window)] = {
                "long_usd": sum(e["notional_usd"] for e in longs),
                "short_usd": sum(e["notional_usd"] for e in shorts),
                "long_count": len(longs),
                "short_count": len(shorts),
                "largest_id": largest["id"],
            }
    return result
