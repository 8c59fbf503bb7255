"""Bucketed rolling totals in the form the worker persists: one value per time bucket.

Pure (no Faust, no Kafka). A bucket value (stream.engine.buckets.BucketValue) holds, for every
scope with events in that bucket, its `ScopeSums` (long and short micro-dollars and counts, the
largest order) plus the offset of the last batch applied to it, which makes re-applying a
redelivered batch a no-op per bucket.

Per event the cost is four bucket updates (one per scope), whatever the number and length of
windows. Window sums are brought up to date once per publish tick: the deltas of the buckets
touched since the last tick are added to every window containing them, and buckets entering
or leaving a window as the clock moves are added or subtracted. USD amounts are summed as
integer micro-dollars, so adding and subtracting never drifts and every replica, restart and
the offline report agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson
from msgspec.structs import replace as copy

from stream.engine.buckets import BucketValue
from stream.engine.scope import parse_scope
from stream.engine.totals import (
    FUTURE_MS,
    ZERO_SUMS,
    Largest,
    ScopeSums,
    Sums,
    bigger,
    largest_of,
    scopes_of,
    totals_key,
    totals_record,
)
from stream.errors import Rejected
from stream.schema import canonical_dicts

_ZERO = ZERO_SUMS


def batch_events(value: bytes | None) -> tuple[list[dict[str, Any]], list[tuple[Any, Rejected]]]:
    """The events of a `liquidations.batches` record ready to sum, and its items that are no
    valid event, each with why. Raises `Rejected` for a record that is no batch at all.

    Stage one forwards only valid events, but anything can be written to a topic: nothing
    reaches `apply_batch` that it cannot sum (it would fail half-way through a batch)."""
    try:
        batch = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        raise Rejected("batch_invalid_json", str(exc)) from None
    events = batch.get("events") if isinstance(batch, dict) else None
    if not isinstance(events, list):
        raise Rejected("batch_malformed", 'expected {"events": [...]}')
    return canonical_dicts(events)


class Aggregation:
    """All scopes' rolling totals of one partition (the worker keeps them global)."""

    def __init__(
        self,
        windows_ms: Mapping[str, int],
        resolution_ms: int,
        private_windows_ms: Mapping[str, int] | None = None,
    ) -> None:
        """`private_windows_ms`: extra windows kept for rules, never published or reported.
        None may be longer than the longest window of `windows_ms`."""
        self.resolution_ms = resolution_ms
        self.reported = {name: ms // resolution_ms for name, ms in windows_ms.items()}
        self.longest = max(self.reported.values())
        self.longest_window = max(self.reported, key=self.reported.__getitem__)
        self.windows = dict(self.reported)
        self._add_private(private_windows_ms or {})
        self.buckets: dict[int, BucketValue] = {}
        # window sums and largest order per scope: {scope_id: {window: ScopeSums}}
        self.sums: dict[str, dict[str, ScopeSums]] = {}
        # bucket -> its sums when first touched since the last tick (the tick adds the change)
        self.pending: dict[int, dict[str, Sums]] = {}
        self.current: int | None = None  # bucket of the clock at the last tick
        self.dirty: set[tuple[str, str]] = set()
        self.published: dict[tuple[str, str], bool] = {}  # key -> last record was non-empty

    def _add_private(self, windows_ms: Mapping[str, int]) -> None:
        for name, ms in windows_ms.items():
            n = ms // self.resolution_ms
            if n > self.longest or ms % self.resolution_ms:
                raise ValueError(f"window {name} does not fit the resolution and longest window")
            self.windows.setdefault(name, n)

    def set_private_windows(self, windows_ms: Mapping[str, int]) -> None:
        """Replace the rule-only windows (rules reloaded); sums are rebuilt from the buckets.
        Windows that are published anyway are kept as they are."""
        self.windows = dict(self.reported)
        self._add_private({n: ms for n, ms in windows_ms.items() if n not in self.reported})
        if self.current is not None:
            self._recompute(self.current)

    def window_buckets(self, window: str) -> int:
        """The length of a window, in buckets."""
        return self.windows[window]

    def boundaries(self, start: int, end: int, lengths: Iterable[int]) -> list[int]:
        """The buckets in (start, end] at which a non-empty bucket enters (length 0) or leaves
        a window of one of `lengths` buckets: the only times its sums change without events."""
        lengths = tuple(lengths)
        return sorted({b + n for b in self.buckets for n in lengths if start < b + n <= end})

    # -- state in and out -------------------------------------------------------------
    def load(self, buckets: Mapping[int, BucketValue], now_ms: int) -> None:
        """Replace the state with persisted buckets (after a recovery)."""
        self.buckets = {b: value for b, value in buckets.items()}
        self.sums, self.pending = {}, {}
        self.current = None
        self.published = {}
        self.advance(now_ms)
        # Say every window of every scope again: one that emptied while no worker ran would
        # otherwise keep its last non-empty record on the compacted totals topic for good.
        scope_ids = {scope_id for value in self.buckets.values() for scope_id in value.scopes}
        for scope_id in scope_ids:
            for window in self.reported:
                self.published[(scope_id, window)] = True
                self.dirty.add((scope_id, window))

    # -- events -----------------------------------------------------------------------
    def apply_batch(
        self,
        events: Iterable[dict[str, Any]],
        offset: int,
        now_ms: int,
        after_each: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[dict[int, BucketValue], list[tuple[dict[str, Any], str]]]:
        """Add a batch's events; return (changed bucket values, rejects with reasons).

        `after_each` sees every accepted event once it counts (the rules evaluate there)."""
        oldest = (now_ms // self.resolution_ms) - self.longest
        latest_ms = now_ms + FUTURE_MS
        changed: dict[int, BucketValue] = {}
        rejects: list[tuple[dict[str, Any], str]] = []
        resolution = self.resolution_ms
        for event in events:
            ts = event["ts"]
            bucket = ts // resolution
            if bucket <= oldest:
                rejects.append((event, "too_late"))
                continue
            if ts > latest_ms:
                rejects.append((event, "from_future"))
                continue
            value = self.buckets.get(bucket)
            if value is None:
                value = self.buckets[bucket] = BucketValue(-1, {})
            elif value.offset >= offset and bucket not in changed:
                # this bucket already holds this batch (redelivered after a crash)
                if after_each is not None:
                    after_each(event)
                continue
            changed[bucket] = value
            self._add(bucket, value.scopes, event)
            if after_each is not None:
                after_each(event)
        for value in changed.values():
            value.offset = offset
        return changed, rejects

    def _add(self, bucket: int, scopes: dict[str, ScopeSums], event: dict[str, Any]) -> None:
        if bucket not in self.pending:  # first touch since the last tick: remember the base
            self.pending[bucket] = {scope_id: entry.sums() for scope_id, entry in scopes.items()}
        # Sums are kept in integer micro-dollars: exact, and independent of the order in
        # which events, redeliveries and recoveries add them up.
        notional = event["notional_usd"]
        micros = int(notional * 1_000_000 + 0.5)
        is_long = event["side"] == "long"
        candidate = None
        for scope_id in scopes_of(event["exchange"], event["coin"]):
            entry = scopes.get(scope_id)
            if entry is None:
                entry = scopes[scope_id] = ScopeSums(0, 0, 0, 0, None)
            if is_long:
                entry.long_micros += micros
                entry.long_count += 1
            else:
                entry.short_micros += micros
                entry.short_count += 1
            current = entry.largest
            if current is None or notional >= current.notional_usd:
                candidate = candidate or largest_of(event)
                if current is None or bigger(candidate, current):
                    entry.largest = candidate

    def window_sums(self, scope_id: str, window: str) -> Sums:
        """A window's sums right now, events since the tick included (what a rule sees after
        each event)."""
        scope_sums = self.sums.get(scope_id)
        running = scope_sums.get(window) if scope_sums else None
        if running is None:
            long = short = long_n = short_n = 0
        else:
            long, short = running.long_micros, running.short_micros
            long_n, short_n = running.long_count, running.short_count
        current = self.current
        if self.pending and current is not None:
            low = current - self.windows[window]
            buckets = self.buckets
            for bucket, bases in self.pending.items():  # unrolled: called per event and rule
                if low < bucket <= current:
                    entry = buckets[bucket].scopes.get(scope_id)
                    if entry is not None:
                        base = bases.get(scope_id, _ZERO)
                        long += entry.long_micros - base.long_micros
                        short += entry.short_micros - base.short_micros
                        long_n += entry.long_count - base.long_count
                        short_n += entry.short_count - base.short_count
        return Sums(long, short, long_n, short_n)

    def scope_ids(self) -> set[str]:
        """Every scope with sums, or with events waiting for the next tick."""
        ids = set(self.sums)
        for bucket in self.pending:
            ids.update(self.buckets[bucket].scopes)
        return ids

    # -- time -------------------------------------------------------------------------
    def advance(self, now_ms: int) -> None:
        """Bring every window up to `now_ms`: pending deltas in, buckets entering/leaving."""
        now_bucket = now_ms // self.resolution_ms
        previous = self.current
        if previous is None or now_bucket < previous or now_bucket - previous > self.longest:
            self._recompute(now_bucket)
            return
        pending, self.pending = self.pending, {}
        for bucket, bases in pending.items():
            windows = [w for w, n in self.windows.items() if previous - n < bucket <= previous]
            if not windows:
                continue
            for scope_id, entry in self.buckets[bucket].scopes.items():
                base = bases.get(scope_id, _ZERO)
                delta = Sums(
                    entry.long_micros - base.long_micros,
                    entry.short_micros - base.short_micros,
                    entry.long_count - base.long_count,
                    entry.short_count - base.short_count,
                )
                if delta.long_count or delta.short_count:
                    for window in windows:
                        self._shift(scope_id, window, delta, +1, bucket)
        if now_bucket == previous:
            return
        self.current = now_bucket
        for window, n in self.windows.items():
            for bucket in range(previous - n + 1, min(previous, now_bucket - n) + 1):
                self._move(bucket, window, -1)  # was inside, is not any more
            for bucket in range(max(previous, now_bucket - n) + 1, now_bucket + 1):
                self._move(bucket, window, +1)  # was ahead of the window, now inside

    def _move(self, bucket: int, window: str, sign: int) -> None:
        value = self.buckets.get(bucket)
        if value is None:
            return
        for scope_id, entry in value.scopes.items():
            self._shift(scope_id, window, entry, sign, bucket)

    def _shift(
        self, scope_id: str, window: str, delta: Sums | ScopeSums, sign: int, bucket: int
    ) -> None:
        """Add (sign +1) or take out (-1) a bucket's sums, or their change, in a window."""
        windows = self.sums.get(scope_id)
        if windows is None:
            windows = self.sums[scope_id] = {}
        running = windows.get(window)
        if running is None:
            running = windows[window] = ScopeSums(0, 0, 0, 0, None)
        running.long_micros += sign * delta.long_micros
        running.short_micros += sign * delta.short_micros
        running.long_count += sign * delta.long_count
        running.short_count += sign * delta.short_count
        if running.long_count + running.short_count == 0:
            running.long_micros = running.short_micros = 0
            running.largest = None
        elif sign > 0:
            candidate = self.buckets[bucket].scopes[scope_id].largest
            current = running.largest
            if candidate is not None and (current is None or bigger(candidate, current)):
                running.largest = candidate
        else:
            current = running.largest
            if current is not None and current.ts // self.resolution_ms == bucket:
                running.largest = self._scan_largest(scope_id, window)
        self.dirty.add((scope_id, window))

    def _scan_largest(self, scope_id: str, window: str) -> Largest | None:
        assert self.current is not None
        best: Largest | None = None
        n = self.windows[window]
        for bucket, value in self.buckets.items():
            if self.current - n < bucket <= self.current:
                entry = value.scopes.get(scope_id)
                largest = None if entry is None else entry.largest
                if largest is not None and (best is None or bigger(largest, best)):
                    best = largest
        return best

    def _recompute(self, now_bucket: int) -> None:
        """Rebuild every window from the buckets (start, recovery, or a clock going back).

        In one pass from the newest bucket back, each scope's running sums taken as each
        window's when the pass leaves that window: every bucket is added once, not once per
        window containing it (the bulk of a restart's rebuild)."""
        self.pending = {}
        old_keys = {(s, w) for s, windows in self.sums.items() for w in windows}
        self.sums = {}
        self.current = now_bucket
        by_length = sorted(self.windows.items(), key=lambda item: item[1])
        longest = by_length[-1][1] if by_length else 0
        running: dict[str, ScopeSums] = {}
        taken = 0
        newest_first = sorted(
            (b for b in self.buckets if now_bucket - longest < b <= now_bucket), reverse=True
        )
        for bucket in newest_first:
            age = now_bucket - bucket  # a window of n buckets holds the ages below n
            while by_length[taken][1] <= age:
                self._take_window(by_length[taken][0], running)
                taken += 1
            for scope_id, entry in self.buckets[bucket].scopes.items():
                sums = running.get(scope_id)
                if sums is None:
                    running[scope_id] = copy(entry)
                    continue
                sums.long_micros += entry.long_micros
                sums.short_micros += entry.short_micros
                sums.long_count += entry.long_count
                sums.short_count += entry.short_count
                candidate = entry.largest
                if candidate is not None and (
                    sums.largest is None or bigger(candidate, sums.largest)
                ):
                    sums.largest = candidate
        for window, _ in by_length[taken:]:
            self._take_window(window, running)
        self.dirty |= old_keys

    def _take_window(self, window: str, running: Mapping[str, ScopeSums]) -> None:
        """A copy of every scope's running sums as `window`'s (see `_recompute`)."""
        sums, dirty = self.sums, self.dirty
        for scope_id, entry in running.items():
            windows = sums.get(scope_id)
            if windows is None:
                windows = sums[scope_id] = {}
            windows[window] = copy(entry)
            dirty.add((scope_id, window))

    def expire(self, now_ms: int) -> list[int]:
        """Forget buckets older than the longest window; return them (to delete from the table)."""
        self.advance(now_ms)
        oldest = now_ms // self.resolution_ms - self.longest
        gone = [bucket for bucket in self.buckets if bucket <= oldest]
        for bucket in gone:
            del self.buckets[bucket]
        return gone

    # -- output -----------------------------------------------------------------------
    def publish(self, now_ms: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """Totals records for every (scope, window) that changed since the last publish."""
        self.advance(now_ms)
        dirty, self.dirty = self.dirty, set()
        for scope_id, window in sorted(dirty):
            if window not in self.reported:
                continue
            running = self.sums.get(scope_id, {}).get(window)
            sums = _ZERO if running is None else running.sums()
            non_empty = sums.total_count > 0
            if not non_empty and not self.published.get((scope_id, window)):
                continue  # never reported, still empty: nothing to say
            self.published[(scope_id, window)] = non_empty
            exchange, coin = parse_scope(scope_id)
            largest = None if running is None else running.largest
            record = totals_record(exchange, coin, window, now_ms, sums, largest)
            yield totals_key(exchange, coin, window), record

    def snapshot(self, now_ms: int) -> list[dict[str, Any]]:
        """At `now_ms`, every window of every scope with an event in the longest window (what
        `liqstream report` prints), ordered by scope then window length."""
        self.advance(now_ms)
        longest = max(self.reported, key=self.reported.__getitem__)
        windows = sorted(self.reported, key=self.reported.__getitem__)
        records = []
        for scope_id in sorted(self.sums):
            scope_sums = self.sums[scope_id]
            in_longest = scope_sums.get(longest)
            if in_longest is None or in_longest.long_count + in_longest.short_count == 0:
                continue
            exchange, coin = parse_scope(scope_id)
            for window in windows:
                running = scope_sums.get(window)
                sums = _ZERO if running is None else running.sums()
                largest = None if running is None else running.largest
                records.append(totals_record(exchange, coin, window, now_ms, sums, largest))
        return records
