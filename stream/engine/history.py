"""History records (`liquidations.history`): one per scope and closed bucket. Pure.

A history record is a bucket's per-scope value as the worker persists it (stream.engine.
aggregation: integer micro-dollars, counts, largest order), so it inherits that state's
exactly-once property: a redelivered batch leaves the bucket unchanged, and a record made from
an unchanged bucket is the same record again (same key, same value). Nothing here sums twice.

When records go out (HistoryClock):
- a bucket closes when the clock passes its end: the tick publishes every scope of it;
- a bucket already closed that a batch changes (a late event) is published again, with that
  batch, before the batch's state is written (so state in the table implies its records);
- `closed_through` (the last bucket published as closed) is remembered in a table of its own;
  after a crash the buckets after it are published again (a repeat is the same record).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from stream.engine.buckets import BucketValue
from stream.engine.scope import parse_scope, topic_key
from stream.engine.totals import ScopeSums, totals_record

HISTORY_MARK_KEY = "mark"  # in the worker's `history` table: {"closed_through": bucket}


def history_key(exchange: str | None, coin: str | None, start_ms: int) -> str:
    return topic_key(exchange, coin, start_ms)


def history_record(
    exchange: str | None,
    coin: str | None,
    start_ms: int,
    resolution_ms: int,
    entry: ScopeSums,
) -> dict[str, Any]:
    """`entry`: one scope's sums and largest order in the bucket.

    USD as the totals give it (micro-dollars converted once) plus the exact integers, which
    is what a reader sums over longer intervals."""
    sums = entry.sums()
    totals = totals_record(exchange, coin, "", start_ms, sums, entry.largest)
    return {
        "exchange": exchange,
        "coin": coin,
        "start": start_ms,
        "resolution_ms": resolution_ms,
        "long_usd": totals["long_usd"],
        "short_usd": totals["short_usd"],
        "total_usd": totals["total_usd"],
        "long_micro_usd": int(sums.long_micros),
        "short_micro_usd": int(sums.short_micros),
        "count": totals["count"],
        "long_count": totals["long_count"],
        "short_count": totals["short_count"],
        "largest": totals["largest"],
    }


def bucket_records(
    bucket: int, value: BucketValue, resolution_ms: int
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(key, record) of every scope of one persisted bucket value."""
    start_ms = bucket * resolution_ms
    for scope_id in sorted(value.scopes):
        exchange, coin = parse_scope(scope_id)
        record = history_record(exchange, coin, start_ms, resolution_ms, value.scopes[scope_id])
        yield history_key(exchange, coin, start_ms), record


class HistoryClock:
    """Which buckets' records are due: closed by the clock, or changed after closing."""

    def __init__(self, resolution_ms: int) -> None:
        self.resolution_ms = resolution_ms
        self.closed_through: int | None = None  # published as closed up to this bucket
        self.saved_through: int | None = None  # what the table holds (written with a batch)

    def load(self, mark: Mapping[str, Any] | None) -> None:
        """After a recovery: the table's mark (None: nothing was ever published as closed)."""
        value = None if mark is None else mark.get("closed_through")
        self.closed_through = self.saved_through = value if isinstance(value, int) else None

    def closing(self, buckets: Mapping[int, Any], now_ms: int) -> tuple[list[int], int]:
        """(buckets with state that closed since the last call, the new `closed_through`);
        call `closed(...)` with the latter once their records are acknowledged."""
        through = now_ms // self.resolution_ms - 1
        after = self.closed_through
        due = sorted(b for b in buckets if b <= through and (after is None or b > after))
        return due, through

    def closed(self, through: int) -> None:
        if self.closed_through is None or through > self.closed_through:
            self.closed_through = through

    def reopened(self, changed: Mapping[int, Any]) -> list[int]:
        """Changed buckets that had already been published as closed (late events)."""
        through = self.closed_through
        if through is None:
            return []
        return sorted(b for b in changed if b <= through)

    def unsaved_mark(self) -> dict[str, int] | None:
        """The mark to write to the table now, or None when the table already has it."""
        if self.closed_through is None or self.closed_through == self.saved_through:
            return None
        self.saved_through = self.closed_through
        return {"closed_through": self.closed_through}
