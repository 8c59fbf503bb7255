"""Totals records (docs/windows.md, "Totals record") and the small value types behind them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import msgspec

from stream.engine.scope import scope_id, topic_key

FUTURE_MS = 5 * 60_000  # events further ahead of the clock are rejected as from_future


class Sums(NamedTuple):
    """A window's (or bucket's) sums as they travel between the engine, the rules and the
    records: USD in integer micro-dollars (exact), counts per position side. A bucket's or a
    window's running sums, with their largest order, are a `ScopeSums`."""

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


class Largest(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The largest order of a bucket or window. Stored (stream.engine.buckets) as the JSON
    array [notional_usd, ts, id, exchange, symbol, side, price, quantity], in that order.

    Immutable: one instance is shared by every scope (and window) it is the largest of.
    `gc=False`: it holds scalars only, so the collector need not track millions of them."""

    notional_usd: float
    ts: int
    id: str
    exchange: str
    symbol: str
    side: str
    price: float
    quantity: float


class ScopeSums(msgspec.Struct, array_like=True, gc=False):
    """One scope's sums and largest order in a bucket (stored, stream.engine.buckets, as the
    JSON array [long_micros, short_micros, long_count, short_count, largest]) or in a window
    (running). Mutable: the hot path adds to it in place. `gc=False`: it holds ints and a
    `Largest` only, never a reference cycle."""

    long_micros: int
    short_micros: int
    long_count: int
    short_count: int
    largest: Largest | None  # None: no event yet (a window emptied; never stored so)

    def sums(self) -> Sums:
        return Sums(self.long_micros, self.short_micros, self.long_count, self.short_count)


def largest_of(event: dict[str, Any]) -> Largest:
    return Largest(
        event["notional_usd"],
        event["ts"],
        event["id"],
        event["exchange"],
        event["symbol"],
        event["side"],
        event["price"],
        event["quantity"],
    )


def bigger(a: Largest, b: Largest) -> bool:
    """Larger notional wins; ties go to the earlier event, then the smaller id (deterministic)."""
    if a.notional_usd != b.notional_usd:
        return a.notional_usd > b.notional_usd
    if a.ts != b.ts:
        return a.ts < b.ts
    return a.id < b.id


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
    return topic_key(exchange, coin, window)


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
            "id": largest.id,
            "exchange": largest.exchange,
            "symbol": largest.symbol,
            "side": largest.side,
            "price": largest.price,
            "quantity": largest.quantity,
            "notional_usd": largest.notional_usd,
            "ts": largest.ts,
        },
    }
