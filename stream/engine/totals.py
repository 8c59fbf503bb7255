"""Totals records (docs/windows.md, "Totals record") and the small value types behind them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

from stream.engine.scope import scope_id

FUTURE_MS = 5 * 60_000  # events further ahead of the clock are rejected as from_future


class Sums(NamedTuple):
    """A window's (or bucket's) sums as they travel between the engine, the rules and the
    records: USD in integer micro-dollars (exact), counts per position side. Stored bucket
    entries keep these four first, positionally, then the largest order (stream.engine.buckets)."""

    long_micros: int
    short_micros: int
    long_count: int
    short_count: int

    @property
    def total_count(self) -> int:
        return self.long_count + self.short_count

    @property
    def total_micros(self) -> int:
        return self.long_micros + self.short_micros


ZERO_SUMS = Sums(0, 0, 0, 0)

# The largest event of a bucket or window, as stored in the table (JSON list):
# [notional_usd, ts, id, exchange, symbol, side, price, quantity]
Largest = list[Any]


def largest_of(event: dict[str, Any]) -> Largest:
    return [
        event["notional_usd"],
        event["ts"],
        event["id"],
        event["exchange"],
        event["symbol"],
        event["side"],
        event["price"],
        event["quantity"],
    ]


def bigger(a: Largest, b: Largest) -> bool:
    """Larger notional wins; ties go to the earlier event, then the smaller id (deterministic)."""
    if a[0] != b[0]:
        return bool(a[0] > b[0])
    if a[1] != b[1]:
        return bool(a[1] < b[1])
    return bool(a[2] < b[2])


@lru_cache(maxsize=65_536)
def scopes_of(exchange: str, coin: str) -> tuple[str, str, str, str]:
    """The four scopes an event counts in: all, coin, exchange, exchange and coin."""
    return (
        scope_id(None, None),
        scope_id(None, coin),
        scope_id(exchange, None),
        scope_id(exchange, coin),
    )


def totals_key(exchange: str | None, coin: str | None, window: str) -> str:
    return f"{exchange or '*'}:{coin or '*'}:{window}"


def totals_record(
    exchange: str | None,
    coin: str | None,
    window: str,
    as_of_ms: int,
    sums: Sums,
    largest: Largest | None,
) -> dict[str, Any]:
    long_micros, short_micros, long_count, short_count = sums
    return {
        "exchange": exchange,
        "coin": coin,
        "window": window,
        "as_of": as_of_ms,
        "total_usd": (long_micros + short_micros) / 1_000_000,
        "long_usd": long_micros / 1_000_000,
        "short_usd": short_micros / 1_000_000,
        "count": int(long_count + short_count),
        "long_count": int(long_count),
        "short_count": int(short_count),
        "largest": None
        if largest is None
        else {
            "id": largest[2],
            "exchange": largest[3],
            "symbol": largest[4],
            "side": largest[5],
            "price": largest[6],
            "quantity": largest[7],
            "notional_usd": largest[0],
            "ts": largest[1],
        },
    }
