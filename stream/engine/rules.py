"""Threshold rules (docs/rules.md): the YAML text of a rules file, parsed and checked. Pure:
reading the file is `stream.rules.load_rules`.

Every mistake is reported with the file, line, rule and field it concerns, all of them at once,
so a user fixes a rules file in one pass. Nothing here evaluates anything (see `evaluator`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from stream.config import parse_duration_ms
from stream.errors import ConfigError
from stream.symbols import coin_named

Metric = Literal["total_usd", "long_usd", "short_usd", "count", "long_share", "single_usd"]
METRICS: tuple[str, ...] = Metric.__args__  # type: ignore[attr-defined]
EACH = "*"  # scope value meaning "evaluate per coin" (or per exchange)
_FIELDS = {"name", "metric", "window", "scope", "above", "below", "hysteresis", "cooldown"}


@dataclass(frozen=True)
class Rule:
    name: str
    metric: str
    window: str | None  # None for single_usd
    exchange: str | None  # None = all exchanges, EACH = per exchange
    coin: str | None  # None = all coins, EACH = per coin
    direction: Literal["above", "below"]
    threshold: float
    hysteresis: float = 0.0
    cooldown_ms: int = 0

    def crossed(self, value: float | None) -> bool:
        if value is None:
            return False
        return value > self.threshold if self.direction == "above" else value < self.threshold

    def recovered(self, value: float | None) -> bool:
        """Back past the hysteresis band (an empty long_share counts as recovered)."""
        if value is None:
            return True
        if self.direction == "above":
            return value <= self.threshold * (1 - self.hysteresis)
        return value >= self.threshold * (1 + self.hysteresis)


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    windows_ms: Mapping[str, int]  # every window a rule uses

    @classmethod
    def empty(cls) -> RuleSet:
        return cls((), {})


def parse_rules(
    text: str, windows_ms: Mapping[str, int], resolution_ms: int, *, source: str = "<rules>"
) -> RuleSet:
    """Rules from YAML text; raises ConfigError listing every mistake with its line.

    A rule may use any window that is a multiple of the resolution and no longer than the
    longest configured window (the worker keeps no older buckets).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{source}{line}: not valid YAML: {problem}") from exc
    checker = _Checker(source, windows_ms, resolution_ms)
    rules = checker.file(root)
    if checker.errors:
        raise ConfigError("\n".join(checker.errors))
    used = {r.window: checker.window_ms(r.window) for r in rules if r.window is not None}
    return RuleSet(tuple(rules), used)


class _Checker:
    def __init__(self, source: str, windows_ms: Mapping[str, int], resolution_ms: int) -> None:
        self.source = source
        self.windows_ms = windows_ms
        self.resolution_ms = resolution_ms
        self.longest_ms = max(windows_ms.values())
        self.errors: list[str] = []

    def error(self, node: yaml.Node | None, where: str, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        self.errors.append(f"{self.source}{line}: {where}: {message}")

    def mapping(self, node: yaml.MappingNode, where: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """The mapping's fields; a key given twice is a mistake (YAML would keep the last)."""
        found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = str(_scalar(key_node))
            if key in found:
                first = found[key][0].start_mark.line + 1
                self.error(key_node, where, f"field {key!r} given twice (first at line {first})")
            found[key] = (key_node, value_node)
        return found

    def window_ms(self, text: str) -> int:
        return self.windows_ms.get(text) or parse_duration_ms(text)

    def file(self, root: yaml.Node | None) -> list[Rule]:
        if root is None:
            return []  # an empty file: no rules
        if not isinstance(root, yaml.MappingNode):
            self.error(root, "file", "must be a mapping with a `rules:` list")
            return []
        top = self.mapping(root, "file")
        for key, (key_node, _) in top.items():
            if key != "rules":
                self.error(key_node, "file", f"unknown top-level key {key!r} (only `rules`)")
        if "rules" not in top:
            self.error(root, "file", "missing the `rules:` list")
            return []
        rules_node = top["rules"][1]
        if _scalar(rules_node) is None and isinstance(rules_node, yaml.ScalarNode):
            return []  # `rules:` with nothing under it
        if not isinstance(rules_node, yaml.SequenceNode):
            self.error(rules_node, "rules", "must be a list of rules")
            return []
        rules = []
        names: dict[str, int] = {}
        for index, node in enumerate(rules_node.value):
            rule = self.rule(index, node)
            if rule is None:
                continue
            if rule.name in names:
                self.error(
                    node,
                    f"rule {rule.name!r}",
                    f"field 'name': duplicate of the rule at line {names[rule.name]}",
                )
                continue
            names[rule.name] = node.start_mark.line + 1
            rules.append(rule)
        return rules

    def rule(self, index: int, node: yaml.Node) -> Rule | None:
        where = f"rules[{index}]"
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where, "must be a mapping (name, metric, window, scope, above...)")
            return None
        before = len(self.errors)
        name_node = next((v for k, v in node.value if _scalar(k) == "name"), None)
        name = _scalar(name_node) if name_node is not None else None
        if isinstance(name, str) and name.strip():
            where = f"rule {name!r}"
        else:
            self.error(name_node or node, where, "field 'name': required, a non-empty string")
        fields = self.mapping(node, where)

        def bad(field: str, message: str) -> None:
            value_node = fields.get(field, (node, node))[1]
            self.error(value_node, where, f"field {field!r}: {message}")

        for key, (key_node, _) in fields.items():
            if key not in _FIELDS:
                self.error(key_node, where, f"unknown field {key!r}; known: {_known(_FIELDS)}")

        metric = _scalar(fields["metric"][1]) if "metric" in fields else None
        if metric not in METRICS:
            shown = "missing" if metric is None else _shown(metric)
            bad("metric", f"{shown}; one of {METRICS}")
            metric = None

        window = self.window(fields, metric, bad)
        exchange, coin = self.scope(fields, where)

        directions = [d for d in ("above", "below") if d in fields]
        threshold: float | None = None
        if len(directions) != 1:
            field = "above" if not directions else "below"
            bad(field, "give exactly one of `above` or `below`")
        else:
            direction = directions[0]
            threshold = _number(_scalar(fields[direction][1]))
            if threshold is None or threshold < 0:
                bad(direction, "must be a number, 0 or more")
                threshold = None
            elif metric == "long_share" and threshold > 1:
                bad(direction, "long_share is a fraction between 0 and 1")
            elif metric == "long_share" and direction == "above" and threshold == 1:
                bad(direction, "long_share is never above 1: the rule could never fire")
            elif metric == "single_usd" and direction == "below":
                bad(direction, "single_usd fires on one event above a size; use `above`")

        hysteresis = 0.0
        if "hysteresis" in fields:
            value = _number(_scalar(fields["hysteresis"][1]))
            if value is None or not 0 <= value < 1:
                bad("hysteresis", "must be a fraction, 0 or more and below 1 (0.05 = 5%)")
            elif metric == "single_usd" and value:
                bad("hysteresis", "single_usd has no state to recover from; remove it")
            elif (
                metric == "long_share"
                and "below" in fields
                and threshold is not None
                and threshold * (1 + value) > 1
            ):
                bad("hysteresis", f"recovery at {threshold * (1 + value):g} is above 1, never met")
            else:
                hysteresis = value

        cooldown_ms = 0
        if "cooldown" in fields:
            raw = _scalar(fields["cooldown"][1])
            no_cooldown = _number(raw) == 0 or _ZERO_DURATION.fullmatch(str(raw).strip())
            if not no_cooldown:
                try:
                    cooldown_ms = parse_duration_ms(str(raw))
                except ValueError as exc:
                    bad("cooldown", str(exc))

        if len(self.errors) > before or metric is None or threshold is None:
            return None
        assert isinstance(name, str)
        return Rule(
            name=name.strip(),
            metric=metric,
            window=window,
            exchange=exchange,
            coin=coin,
            direction=directions[0],  # type: ignore[arg-type]
            threshold=threshold,
            hysteresis=hysteresis,
            cooldown_ms=cooldown_ms,
        )

    def window(self, fields: dict[str, Any], metric: str | None, bad: Any) -> str | None:
        if metric == "single_usd":
            if "window" in fields:
                bad("window", "single_usd fires per event and has no window; remove it")
            return None
        raw = _scalar(fields["window"][1]) if "window" in fields else None
        if raw is None:
            bad("window", f"required; one of {_known(self.windows_ms)} or another duration")
            return None
        window = str(raw).strip()
        try:
            window_ms = self.window_ms(window)
        except ValueError as exc:
            bad("window", str(exc))
            return None
        if window_ms % self.resolution_ms:
            bad("window", f"{window} is not a multiple of the resolution ({self.resolution_ms} ms)")
        elif window_ms > self.longest_ms:
            bad("window", f"{window} is longer than the longest configured window")
        return window

    def scope(self, fields: dict[str, Any], where: str) -> tuple[str | None, str | None]:
        if "scope" not in fields:
            return None, None
        node = fields["scope"][1]
        if isinstance(node, yaml.ScalarNode) and _scalar(node) is None:
            return None, None
        if not isinstance(node, yaml.MappingNode):
            self.error(node, where, "field 'scope': a mapping like {coin: BTC} or {} for all")
            return None, None
        values: dict[str, str | None] = {"exchange": None, "coin": None}
        for key, (key_node, value_node) in self.mapping(node, where).items():
            if key not in values:
                self.error(key_node, where, f"field 'scope.{key}': unknown; use exchange or coin")
                continue
            value = _scalar(value_node)
            if not isinstance(value, str) or not value.strip():
                self.error(value_node, where, f"field 'scope.{key}': a name or \"*\"")
                continue
            value = value.strip()
            if key == "exchange" and value != EACH:
                value = value.lower()
                known = _exchanges()
                if value not in known:
                    self.error(
                        value_node,
                        where,
                        f"field 'scope.exchange': unknown exchange {value!r}; known: "
                        f"{_known(known)}",
                    )
            elif key == "coin" and value != EACH:
                value = coin_named(value)
            values[key] = value
        return values["exchange"], values["coin"]


_ZERO_DURATION = re.compile(r"0+\s*(ms|s|m|h|d)?")


def _shown(value: Any) -> str:
    """A value for a message: YAML's text for a scalar, the kind of node otherwise."""
    if isinstance(value, yaml.SequenceNode):
        return "a list"
    if isinstance(value, yaml.MappingNode):
        return "a mapping"
    return repr(value)


def _scalar(node: yaml.Node) -> Any:
    """The node's value as YAML's safe loader would give it."""
    if not isinstance(node, yaml.ScalarNode):
        return node  # not a scalar: callers report it as the wrong type
    return yaml.SafeLoader("").construct_object(node)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _known(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _exchanges() -> set[str]:
    from stream.exchanges import COLLECTOR_EXCHANGES

    return set(COLLECTOR_EXCHANGES)
