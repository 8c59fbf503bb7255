"""Brute-force rule evaluation: every value recomputed from the list of accepted events.

Follows docs/rules.md and the evaluation points of `stream.engine.evaluator` (each event,
and each bucket boundary where a non-empty bucket enters or leaves a rule's window), but
shares no code with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stream.engine.rules import Rule
from tests.worker.reference import accepted


def _micros(usd: float) -> int:
    return int(usd * 1_000_000 + 0.5)


def _in_scope(rule: Rule, scope: tuple[str, str], event: dict[str, Any]) -> bool:
    exchange, coin = scope
    return (exchange == "*" or event["exchange"] == exchange) and (
        coin == "*" or event["coin"] == coin
    )


def _value(rule: Rule, scope: tuple[str, str], events: list[dict], t: int, n: int, res: int):
    now_bucket = t // res
    inside = [
        e
        for e in events
        if now_bucket - n < e["ts"] // res <= now_bucket and _in_scope(rule, scope, e)
    ]
    long_micros = sum(_micros(e["notional_usd"]) for e in inside if e["side"] == "long")
    short_micros = sum(_micros(e["notional_usd"]) for e in inside if e["side"] == "short")
    values = {
        "total_usd": (long_micros + short_micros) / 1_000_000,
        "long_usd": long_micros / 1_000_000,
        "short_usd": short_micros / 1_000_000,
        "count": len(inside),
        "long_share": long_micros / (long_micros + short_micros)
        if long_micros + short_micros
        else None,
    }
    return values[rule.metric], len(inside)


def _scope_key(rule: Rule, event: dict) -> tuple[str, str] | None:
    for part, value in (("exchange", event["exchange"]), ("coin", event["coin"])):
        wanted = getattr(rule, part)
        if wanted not in (None, "*") and wanted != value:
            return None
    return (
        "*" if rule.exchange is None else event["exchange"],
        "*" if rule.coin is None else event["coin"],
    )


def brute_force_detect(
    events: Iterable[dict[str, Any]],
    rules: list[Rule],
    windows_ms: Mapping[str, int],
    resolution_ms: int,
) -> list[dict[str, Any]]:
    res = resolution_ms
    all_windows = dict(windows_ms)
    longest = max(ms // res for ms in windows_ms.values())
    seen: list[dict] = []
    breached: dict[tuple[str, tuple[str, str]], bool] = {}
    last_breach: dict[tuple[str, tuple[str, str]], int] = {}
    out: list[dict] = []

    def window_n(rule: Rule) -> int:
        from stream.config import parse_duration_ms

        assert rule.window is not None
        return (all_windows.get(rule.window) or parse_duration_ms(rule.window)) // res

    def emit(rule, state, scope, value, ts, event):
        record = {
            "rule": rule.name,
            "state": state,
            "metric": rule.metric,
            "window": rule.window,
            "exchange": None if scope[0] == "*" else scope[0],
            "coin": None if scope[1] == "*" else scope[1],
            "value": value,
            "threshold": rule.threshold,
            "ts": ts,
            "event_id": None if event is None else event["id"],
        }
        if rule.metric == "single_usd":
            record["event"] = {
                k: event[k]
                for k in ("exchange", "symbol", "coin", "side", "price", "quantity", "notional_usd")
            }
        out.append(record)

    def check(rule, scope, t, event, clock_ms=None):
        at = t if clock_ms is None else clock_ms  # values are as of the clock
        value, _ = _value(rule, scope, seen, at, window_n(rule), res)
        key = (rule.name, scope)
        cooled = key not in last_breach or abs(t - last_breach[key]) >= rule.cooldown_ms
        if not breached.get(key):
            crossed = value is not None and (
                value > rule.threshold if rule.direction == "above" else value < rule.threshold
            )
            if crossed and cooled:
                breached[key] = True
                last_breach[key] = t
                emit(rule, "breach", scope, value, t, event)
        else:
            if rule.direction == "above":
                back = value is None or value <= rule.threshold * (1 - rule.hysteresis)
            else:
                back = value is None or value >= rule.threshold * (1 + rule.hysteresis)
            if back:
                breached[key] = False
                emit(rule, "recovered", scope, value, t, event)

    stateful = [r for r in rules if r.metric != "single_usd"]

    def time_point(t):
        for rule in stateful:
            if rule.exchange != "*" and rule.coin != "*":
                scopes = {(rule.exchange or "*", rule.coin or "*")}
            else:
                n = window_n(rule) if rule.direction == "above" else longest
                scopes = {
                    s
                    for e in seen
                    if (s := _scope_key(rule, e)) is not None
                    and _value(rule, s, seen, t, n, res)[1] > 0
                }
                scopes |= {s for (name, s), b in breached.items() if b and name == rule.name}
            for scope in sorted(scopes):
                check(rule, scope, t, None)

    clock = None
    for event in events:
        t_now = event["ts"] if clock is None else max(clock, event["ts"])
        if clock is not None and stateful:
            lengths = {0} | {window_n(r) for r in stateful}
            points = sorted(
                {
                    e["ts"] // res + n
                    for e in seen
                    for n in lengths
                    if clock // res < e["ts"] // res + n <= t_now // res
                }
            )
            for point in points:
                time_point(point * res)
        clock = t_now
        if not accepted(event, clock, res, longest):
            continue
        seen.append(event)
        for rule in rules:
            scope = _scope_key(rule, event)
            if scope is None:
                continue
            if rule.metric == "single_usd":
                key = (rule.name, scope)
                cooled = (
                    key not in last_breach
                    or abs(event["ts"] - last_breach[key]) >= rule.cooldown_ms
                )
                if event["notional_usd"] > rule.threshold and cooled:
                    last_breach[key] = event["ts"]
                    emit(rule, "breach", scope, event["notional_usd"], event["ts"], event)
            else:
                check(rule, scope, event["ts"], event, clock)
    return out
