"""Bucketed rolling totals in the form the worker persists: one value per time bucket.

Pure (no Faust, no Kafka). A bucket value holds, for every scope with events in that bucket,
[long_micro_usd, short_micro_usd, long_count, short_count, largest] plus the offset `o` of
the last batch applied to it, which makes re-applying a redelivered batch a no-op per bucket.

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

from stream.engine.scope import parse_scope
from stream.engine.totals import (
    FUTURE_MS,
    ZERO_SUMS,
    Largest,
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
        self.buckets: dict[int, dict[str, Any]] = {}
        # window sums per scope: {scope_id: {window: [long, short, long_n, short_n]}}
        self.sums: dict[str, dict[str, list[int]]] = {}
        self.largest: dict[str, dict[str, Largest | None]] = {}
        # bucket -> its sums when first touched since the last tick (the tick adds the change)
        self.pending: dict[int, dict[str, list[int]]] = {}
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
    def load(self, buckets: Mapping[int, dict[str, Any]], now_ms: int) -> None:
        """Replace the state with persisted buckets (after a recovery)."""
        self.buckets = {b: value for b, value in buckets.items()}
        self.sums, self.largest, self.pending = {}, {}, {}
        self.current = None
        self.published = {}
        self.advance(now_ms)
        # Say every window of every scope again: one that emptied while no worker ran would
        # otherwise keep its last non-empty record on the compacted totals topic for good.
        scope_ids = {scope_id for value in self.buckets.values() for scope_id in value["s"]}
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
    ) -> tuple[dict[int, dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """Add a batch's events; return (changed bucket values, rejects with reasons).

        `after_each` sees every accepted event once it counts (the rules evaluate there)."""
        oldest = (now_ms // self.resolution_ms) - self.longest
        latest_ms = now_ms + FUTURE_MS
        changed: dict[int, dict[str, Any]] = {}
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
                value = self.buckets[bucket] = {"o": -1, "s": {}}
            elif value["o"] >= offset and bucket not in changed:
                # this bucket already holds this batch (redelivered after a crash)
                if after_each is not None:
                    after_each(event)
                continue
            changed[bucket] = value
            self._add(bucket, value["s"], event)
            if after_each is not None:
                after_each(event)
        for value in changed.values():
            value["o"] = offset
        return changed, rejects

    def _add(self, bucket: int, scopes: dict[str, list[Any]], event: dict[str, Any]) -> None:
        if bucket not in self.pending:  # first touch since the last tick: remember the base
            self.pending[bucket] = {scope_id: agg[:4] for scope_id, agg in scopes.items()}
        # Sums are kept in integer micro-dollars: exact, and independent of the order in
        # which events, redeliveries and recoveries add them up.
        notional = event["notional_usd"]
        micros = int(notional * 1_000_000 + 0.5)
        side = 0 if event["side"] == "long" else 1
        candidate = None
        for scope_id in scopes_of(event["exchange"], event["coin"]):
            agg = scopes.get(scope_id)
            if agg is None:
                agg = scopes[scope_id] = [0, 0, 0, 0, None]
            agg[side] += micros
            agg[side + 2] += 1
            current = agg[4]
            if current is None or notional >= current[0]:
                candidate = candidate or largest_of(event)
                if current is None or bigger(candidate, current):
                    agg[4] = candidate

    def window_sums(self, scope_id: str, window: str) -> Sums:
        """A window's sums right now, events since the tick included (what a rule sees after
        each event)."""
        scope_sums = self.sums.get(scope_id)
        long, short, long_n, short_n = scope_sums.get(window, _ZERO) if scope_sums else _ZERO
        current = self.current
        if self.pending and current is not None:
            low = current - self.windows[window]
            buckets = self.buckets
            for bucket, bases in self.pending.items():  # unrolled: called per event and rule
                if low < bucket <= current:
                    agg = buckets[bucket]["s"].get(scope_id)
                    if agg is not None:
                        base = bases.get(scope_id, _ZERO)
                        long += agg[0] - base[0]
                        short += agg[1] - base[1]
                        long_n += agg[2] - base[2]
                        short_n += agg[3] - base[3]
        return Sums(long, short, long_n, short_n)

    def scope_ids(self) -> set[str]:
        """Every scope with sums, or with events waiting for the next tick."""
        ids = set(self.sums)
        for bucket in self.pending:
            ids.update(self.buckets[bucket]["s"])
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
            for scope_id, agg in self.buckets[bucket]["s"].items():
                base = bases.get(scope_id, _ZERO)
                delta = [agg[0] - base[0], agg[1] - base[1], agg[2] - base[2], agg[3] - base[3]]
                if delta[2] or delta[3]:
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
        for scope_id, agg in value["s"].items():
            self._shift(scope_id, window, agg, sign, bucket)

    def _shift(self, scope_id: str, window: str, delta: list[Any], sign: int, bucket: int) -> None:
        sums = self.sums.setdefault(scope_id, {}).setdefault(window, [0, 0, 0, 0])
        for i in range(4):
            sums[i] += sign * delta[i]
        largest = self.largest.setdefault(scope_id, {})
        if sums[2] + sums[3] == 0:
            sums[:] = [0, 0, 0, 0]
            largest[window] = None
        elif sign > 0:
            candidate = self.buckets[bucket]["s"][scope_id][4]
            current = largest.get(window)
            if current is None or bigger(candidate, current):
                largest[window] = candidate
        else:
            current = largest.get(window)
            if current is not None and current[1] // self.resolution_ms == bucket:
                largest[window] = self._scan_largest(scope_id, window)
        self.dirty.add((scope_id, window))

    def _scan_largest(self, scope_id: str, window: str) -> Largest | None:
        assert self.current is not None
        best: Largest | None = None
        n = self.windows[window]
        for bucket, value in self.buckets.items():
            if self.current - n < bucket <= self.current:
                agg = value["s"].get(scope_id)
                if agg is not None and (best is None or bigger(agg[4], best)):
                    best = agg[4]
        return best

    def _recompute(self, now_bucket: int) -> None:
        """Rebuild every window from the buckets (start, recovery, or a clock going back)."""
        self.pending = {}
        old_keys = {(s, w) for s, windows in self.sums.items() for w in windows}
        self.sums, self.largest = {}, {}
        self.current = now_bucket
        for bucket in sorted(self.buckets):
            for window, n in self.windows.items():
                if now_bucket - n < bucket <= now_bucket:
                    self._move(bucket, window, +1)
        self.dirty |= old_keys

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
            sums = self.sums.get(scope_id, {}).get(window, [0, 0, 0, 0])
            non_empty = sums[2] + sums[3] > 0
            if not non_empty and not self.published.get((scope_id, window)):
                continue  # never reported, still empty: nothing to say
            self.published[(scope_id, window)] = non_empty
            exchange, coin = parse_scope(scope_id)
            largest = self.largest.get(scope_id, {}).get(window)
            record = totals_record(exchange, coin, window, now_ms, Sums(*sums), largest)
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
            if sum(scope_sums.get(longest, (0, 0, 0, 0))[2:]) == 0:
                continue
            exchange, coin = parse_scope(scope_id)
            for window in windows:
                sums = scope_sums.get(window, [0, 0, 0, 0])
                largest = self.largest[scope_id].get(window)
                records.append(totals_record(exchange, coin, window, now_ms, Sums(*sums), largest))
        return records
