"""Edge-triggered rule evaluation over the rolling totals (docs/rules.md). Pure.

The evaluator reads window values, through the small `WindowReader` protocol, from the same
`Aggregation` the worker publishes totals from, so a breach and the totals record beside it
never disagree. The order at each event is the contract's: time advances first (values decay,
recoveries happen), then the event is added, then its scopes are evaluated.

Between events the values change only at bucket boundaries where a non-empty bucket enters
or leaves a rule's window; those are the time points evaluated for recoveries (and breaches)
that time alone causes. A wildcard scope is evaluated while it has events in the rule's window
(for `below` rules: in the longest window) or is in breach; fixed scopes always are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from stream.engine import scope as scopes_text
from stream.engine.rules import EACH, Rule, RuleSet
from stream.engine.totals import Sums

SINGLE = "single_usd"
# Metrics an added event can only raise: while an `above` rule on one of them is breached, an
# event cannot recover it (time can, and time is evaluated at every boundary), so the event
# path skips it. That is where a cascade spends its events.
RISING = frozenset({"total_usd", "long_usd", "short_usd", "count"})


class WindowReader(Protocol):
    """What the evaluator reads of the rolling totals (stream.engine.aggregation.Aggregation):
    window sums of a scope right now, and when they change as time passes."""

    resolution_ms: int
    longest_window: str

    def window_sums(self, scope_id: str, window: str) -> Sums:
        """A window's sums now."""
        ...

    def window_buckets(self, window: str) -> int: ...

    def scope_ids(self) -> set[str]: ...

    def advance(self, now_ms: int) -> None: ...

    def boundaries(self, start: int, end: int, lengths: Iterable[int]) -> list[int]: ...

    def set_private_windows(self, windows_ms: Mapping[str, int]) -> None:
        """Keep these windows too (rules' own; those also published are kept anyway)."""
        ...


@dataclass
class RuleState:
    breached: bool = False
    last_breach_ts: int | None = None  # for the cooldown


def scope_of_event(rule: Rule, exchange: str, coin: str) -> str | None:
    """The scope id (as the aggregation names it) in which `rule` sees this event, if any."""
    if rule.exchange not in (None, EACH, exchange) or rule.coin not in (None, EACH, coin):
        return None
    return scopes_text.scope_id(
        None if rule.exchange is None else exchange, None if rule.coin is None else coin
    )


def rule_matches(rule: Rule, scope: str) -> bool:
    exchange, coin = scopes_text.parse_scope(scope)
    return _part_matches(rule.exchange, exchange) and _part_matches(rule.coin, coin)


def _part_matches(pattern: str | None, value: str | None) -> bool:
    if pattern is None:
        return value is None
    if pattern == EACH:
        return value is not None
    return value == pattern


def metric_value(metric: str, sums: Sums) -> float | int | None:
    if metric == "total_usd":
        return sums.total_micros / 1_000_000
    if metric == "long_usd":
        return sums.long_micros / 1_000_000
    if metric == "short_usd":
        return sums.short_micros / 1_000_000
    if metric == "count":
        return sums.total_count
    if metric == "long_share":
        total = sums.total_micros
        return sums.long_micros / total if total else None
    raise ValueError(f"{metric} is not a window metric")


def breach_record(
    rule: Rule, state: str, scope: str, value: Any, ts: int, event: dict[str, Any] | None
) -> dict[str, Any]:
    exchange, coin = scopes_text.parse_scope(scope)
    record = {
        "rule": rule.name,
        "state": state,
        "metric": rule.metric,
        "window": rule.window,
        "exchange": exchange,
        "coin": coin,
        "value": value,
        "threshold": rule.threshold,
        "ts": ts,
        "event_id": None if event is None else event["id"],
    }
    if rule.metric == SINGLE and event is not None:  # which order it was, at a glance
        record["event"] = {
            key: event[key]
            for key in ("exchange", "symbol", "coin", "side", "price", "quantity", "notional_usd")
        }
    return record


def _identity(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["rule"], record["exchange"], record["coin"], record["state"], record["event_id"])


class RuleEvaluator:
    """Rule states per (rule, scope); `emitted` collects breach and recovery records."""

    def __init__(self, rules: RuleSet, aggregation: WindowReader) -> None:
        self.aggregation = aggregation
        self.rules: tuple[Rule, ...] = ()
        self.states: dict[tuple[str, str], RuleState] = {}
        self.changed: set[tuple[str, str]] = set()  # states to persist
        self.emitted: list[dict[str, Any]] = []
        # records already published by a batch that is being delivered again (after a crash)
        self.suppressed: dict[tuple[Any, ...], int] = {}
        self.clock: int | None = None
        self.set_rules(rules)

    # -- rules --------------------------------------------------------------------------
    def set_rules(self, rules: RuleSet) -> None:
        """Swap the rules; a rule that kept its name and definition keeps its state."""
        kept = {rule.name for rule in rules.rules} & {
            rule.name for rule in self.rules if rule in rules.rules
        }
        for key in [key for key in self.states if key[0] not in kept]:
            del self.states[key]
            self.changed.add(key)
        self.rules = rules.rules
        self.stateful = tuple(rule for rule in self.rules if rule.metric != SINGLE)
        self._seeing: dict[tuple[str, str], tuple[tuple[Rule, str], ...]] = {}
        self.rises_above = {
            rule.name
            for rule in self.stateful
            if rule.metric in RISING and rule.direction == "above"
        }
        self.by_name = {rule.name: rule for rule in self.rules}
        self.aggregation.set_private_windows(rules.windows_ms)
        self.window_lengths = sorted(
            {0}
            | {
                self.aggregation.window_buckets(rule.window)
                for rule in self.stateful
                if rule.window
            }
        )

    # -- time ---------------------------------------------------------------------------
    def advance(self, now_ms: int, *, evaluate: bool = True) -> None:
        """Let time pass up to `now_ms`, evaluating every boundary where a window changes
        (unless `evaluate` is off: the totals are known to lag, see `after_event`)."""
        if self.clock is None or now_ms <= self.clock:
            self.clock = now_ms if self.clock is None else self.clock
            self.aggregation.advance(self.clock)
            return
        resolution = self.aggregation.resolution_ms
        start, end = self.clock // resolution, now_ms // resolution
        if evaluate and end > start and self.stateful:
            for boundary in self.aggregation.boundaries(start, end, self.window_lengths):
                self.aggregation.advance(boundary * resolution)
                self.evaluate_all(boundary * resolution)
        self.aggregation.advance(now_ms)
        self.clock = now_ms

    def evaluate_all(self, ts: int) -> None:
        """Evaluate every stateful rule in every scope it has (no event: time passing)."""
        breached_scopes: dict[str, list[str]] = {}
        for (name, scope_id), state in self.states.items():
            if state.breached:
                breached_scopes.setdefault(name, []).append(scope_id)
        scope_ids: set[str] | None = None
        for rule in self.stateful:
            if rule.exchange != EACH and rule.coin != EACH:
                scopes: Iterable[str] = [scopes_text.scope_id(rule.exchange, rule.coin)]
            else:
                if scope_ids is None:
                    scope_ids = self.aggregation.scope_ids()
                assert rule.window is not None
                # Scopes with events in the rule's window; for a `below` rule, in the longest
                # window, since a scope that went quiet is what such a rule is there to see.
                window = (
                    rule.window if rule.direction == "above" else self.aggregation.longest_window
                )
                live = {
                    s
                    for s in scope_ids
                    if rule_matches(rule, s) and self.aggregation.window_sums(s, window).total_count
                }
                scopes = sorted(live | set(breached_scopes.get(rule.name, ())))
            for scope_id in scopes:
                self._check(rule, scope_id, ts, None)

    # -- events -------------------------------------------------------------------------
    def after_event(self, event: dict[str, Any]) -> None:
        """Evaluate the rules that see `event`, once it has been added to the totals."""
        self._after_event(event, stateful=True)

    def after_event_single(self, event: dict[str, Any]) -> None:
        """Only the per-event (`single_usd`) rules: for batches delivered again after a crash,
        while the totals still lag behind the states already published."""
        self._after_event(event, stateful=False)

    def _rules_seeing(self, exchange: str, coin: str) -> tuple[tuple[Rule, str], ...]:
        """The rules that see an event of (exchange, coin), each with its scope id; kept per
        pair, as the event path asks for every event."""
        found = self._seeing.get((exchange, coin))
        if found is None:
            found = self._seeing[exchange, coin] = tuple(
                (rule, scope_id)
                for rule in self.rules
                if (scope_id := scope_of_event(rule, exchange, coin)) is not None
            )
        return found

    def _after_event(self, event: dict[str, Any], *, stateful: bool) -> None:
        ts = event["ts"]
        for rule, scope_id in self._rules_seeing(event["exchange"], event["coin"]):
            if rule.metric != SINGLE:
                if not stateful:
                    continue
                if rule.name in self.rises_above:
                    state = self.states.get((rule.name, scope_id))
                    if state is not None and state.breached:
                        continue  # only time can recover it
                self._check(rule, scope_id, ts, event)
                continue
            notional = event["notional_usd"]
            if notional > rule.threshold:
                key = (rule.name, scope_id)
                state = self.states.setdefault(key, RuleState())
                if self._cooled_down(rule, state, ts):
                    state.last_breach_ts = ts
                    self.changed.add(key)
                    self.emitted.append(
                        breach_record(rule, "breach", scope_id, notional, ts, event)
                    )

    def _check(self, rule: Rule, scope_id: str, ts: int, event: dict[str, Any] | None) -> None:
        assert rule.window is not None
        value = metric_value(rule.metric, self.aggregation.window_sums(scope_id, rule.window))
        key = (rule.name, scope_id)
        state = self.states.get(key)
        if state is None or not state.breached:
            if rule.crossed(value) and (state is None or self._cooled_down(rule, state, ts)):
                self.states[key] = RuleState(breached=True, last_breach_ts=ts)
                self.changed.add(key)
                self.emitted.append(breach_record(rule, "breach", scope_id, value, ts, event))
        elif rule.recovered(value):
            state.breached = False
            self.changed.add(key)
            self.emitted.append(breach_record(rule, "recovered", scope_id, value, ts, event))

    @staticmethod
    def _cooled_down(rule: Rule, state: RuleState, ts: int) -> bool:
        """At least `cooldown` away from the last breach; either way, as venues' events
        arrive a little out of order."""
        last = state.last_breach_ts
        return last is None or abs(ts - last) >= rule.cooldown_ms

    def drain(self) -> list[dict[str, Any]]:
        """The records to publish: those emitted, less those already published."""
        emitted, self.emitted = self.emitted, []
        if not self.suppressed:
            return emitted
        fresh = []
        for record in emitted:
            key = _identity(record)
            if self.suppressed.get(key, 0) > 0:
                self.suppressed[key] -= 1
            else:
                fresh.append(record)
        return fresh

    def suppress(self, record: dict[str, Any]) -> None:
        """`record` was published already: do not publish its repeat."""
        key = _identity(record)
        self.suppressed[key] = self.suppressed.get(key, 0) + 1

    def stop_suppressing(self) -> None:
        """Past the batches delivered again: every record from here on is new."""
        self.suppressed.clear()

    # -- persistence --------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every state, pending record and the clock (a recovery rebuilds them)."""
        self.states.clear()
        self.changed.clear()
        self.emitted.clear()
        self.suppressed.clear()
        self.clock = None

    def restore(
        self,
        states: Mapping[tuple[str, str], RuleState],
        replayed: Iterable[dict[str, Any]] = (),
        repeats: Iterable[dict[str, Any]] = (),
    ) -> None:
        """After `reset`: the states a table held, then the states the records published
        after them imply (in publication order), and the records not to publish again."""
        self.states.update(states)
        for record in replayed:
            self.apply_record(record)
        for record in repeats:
            self.suppress(record)

    def take_changed(self) -> list[tuple[tuple[str, str], RuleState | None]]:
        """The states changed since the last call, each with its state (None: forgotten)."""
        changed = [(key, self.states.get(key)) for key in self.changed]
        self.changed.clear()
        return changed

    def apply_record(self, record: dict[str, Any]) -> None:
        """Take the state a published breach record implies (replayed after a crash)."""
        rule = self.by_name.get(record["rule"])
        if rule is None:
            return
        key = (rule.name, scopes_text.scope_id(record["exchange"], record["coin"]))
        state = self.states.setdefault(key, RuleState())
        if record["state"] == "breach":
            state.last_breach_ts = record["ts"]
            state.breached = rule.metric != SINGLE
        else:
            state.breached = False
        self.changed.add(key)
