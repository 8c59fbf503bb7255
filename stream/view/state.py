"""What the HTTP API answers, built from the output topics alone. Pure: no Kafka, no HTTP.

Every worker keeps the same view by reading the compacted `liquidations.totals`, the recent
`liquidations.breaches` and `collectors.status`, so any worker answers any query identically
once it has read them, whichever worker owns the aggregation.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stream.schema import EXCHANGES
from stream.symbols import coin_named
from stream.view.fanout import StreamFilter

DAY_MS = 86_400_000
STALE_BEATS = 3  # a feed is stale after 3 x its heartbeat interval_s without one


class BadRequest(ValueError):
    """A query parameter the API refuses; the message says why (HTTP 400)."""


@dataclass
class FeedCoverage:
    exchange: str
    feed: str
    state: str = "unknown"
    since: int | None = None
    gaps: list[dict[str, int]] = field(default_factory=list)
    # From the feed's latest `coverage` status record (None until one was read): instruments
    # the venue lists and the feed has subscribed, topics the venue refused, and when.
    listed: int | None = None
    subscribed: int | None = None
    rejected: list[dict[str, str]] = field(default_factory=list)
    wildcard: bool = False
    coverage_as_of: int | None = None
    # From the feed's latest `heartbeat` record (None until one was read): a feed whose
    # collector died without a word (kill -9) stops sending them, which is how it shows.
    heartbeat_as_of: int | None = None
    heartbeat_interval_s: float | None = None

    def stale(self, now_ms: int) -> bool:
        """No heartbeat for 3 x its own interval (docs/events.md); False for a feed that
        never sent one (collectors without heartbeats keep the old behaviour)."""
        if self.heartbeat_as_of is None or self.heartbeat_interval_s is None:
            return False
        return now_ms - self.heartbeat_as_of > STALE_BEATS * self.heartbeat_interval_s * 1000


@dataclass
class GlobalView:
    windows: tuple[str, ...]  # the configured windows, shortest first
    feeds: Mapping[str, tuple[str, bool, str]]  # feed -> (exchange, lower_bound, note)
    max_breaches: int = 1_000
    totals: dict[str, dict[str, Any]] = field(default_factory=dict)
    breaches: list[dict[str, Any]] = field(default_factory=list)  # oldest first
    coverage: dict[str, FeedCoverage] = field(default_factory=dict)
    totals_version: int = 0  # changes whenever `totals` does: answers cached per version

    def __post_init__(self) -> None:
        for name, (exchange, _, _) in self.feeds.items():
            self.coverage.setdefault(name, FeedCoverage(exchange, name))

    # -- input --------------------------------------------------------------------------
    def add_totals(self, key: str, record: dict[str, Any] | None) -> None:
        """The latest record per key; an empty window or a tombstone removes the key.
        Raises ValueError for a record not shaped like a totals record (kept out)."""
        if record is not None:
            _require(record, _TOTALS_SHAPE, "totals")
            if record["largest"] is not None:
                _require(record["largest"], _LARGEST_SHAPE, "largest order")
        if record is None or not record.get("count"):
            self.totals.pop(key, None)
        else:
            self.totals[key] = record
        self.totals_version += 1

    def add_breach(self, record: dict[str, Any]) -> bool:
        """Kept in time order, the newest `max_breaches`: the same set and order on every
        worker, whatever order it read the topic's partitions in. False when already held
        (the topic read again after a reconnect). Raises ValueError for a record not shaped
        like a breach record: one would break the ordering for every later one."""
        _require(record, _BREACH_SHAPE, "breach")
        order = _breach_order(record)
        at = bisect.bisect_left(self.breaches, order, key=_breach_order)
        same_order = at
        while same_order < len(self.breaches) and _breach_order(self.breaches[same_order]) == order:
            if self.breaches[same_order] == record:
                return False
            same_order += 1
        self.breaches.insert(at, record)
        del self.breaches[: -self.max_breaches]
        return True

    def add_status(self, record: dict[str, Any]) -> None:
        """A `collectors.status` record (docs/events.md, "Status records") into its feed's
        coverage. Raises ValueError, changing nothing, for a record not shaped like one:
        a feed named by a number, say, would break the sorted answer for every later query."""
        name = record.get("feed") or record.get("exchange", "?")
        exchange = record.get("exchange", "?")
        if not isinstance(name, str) or not isinstance(exchange, str):
            raise ValueError(f"not a status record: feed={name!r}, exchange={exchange!r}")
        state = record.get("state")
        taken = _subscriptions(record) if state in ("coverage", "heartbeat") else None
        if state == "heartbeat":
            _require(record, _HEARTBEAT_SHAPE, "heartbeat")
            if not 0 < record["interval_s"] < float("inf"):
                raise ValueError(f"not a heartbeat record: interval_s={record['interval_s']!r}")
        if state == "gap":
            _require(record, _GAP_SHAPE, "gap")
        elif state in ("connected", "disconnected"):
            _require(record, _TS_SHAPE, state)
        coverage = self.coverage.get(name)  # the record is fine: from here nothing raises
        if coverage is None:
            coverage = self.coverage[name] = FeedCoverage(exchange, name)
        if state == "heartbeat" and (
            coverage.heartbeat_as_of is None or record["ts"] >= coverage.heartbeat_as_of
        ):  # older ones: the topic read again
            coverage.heartbeat_as_of = record["ts"]
            coverage.heartbeat_interval_s = float(record["interval_s"])
        if taken is not None:
            if coverage.coverage_as_of is None or record["ts"] >= coverage.coverage_as_of:
                coverage.listed, coverage.subscribed, coverage.rejected, coverage.wildcard = taken
                coverage.coverage_as_of = record["ts"]  # older ones: the topic read again
        elif state == "gap":
            gap = {"start": record["gap_start"], "end": record["gap_end"]}
            if gap not in coverage.gaps:  # the topic read again after a reconnect
                coverage.gaps.append(gap)
            ts = record.get("ts")
            latest = ts if isinstance(ts, int) and ts > record["gap_end"] else record["gap_end"]
            cutoff = latest - DAY_MS  # bounded between queries
            coverage.gaps = [gap for gap in coverage.gaps if gap["end"] >= cutoff]
        elif state in ("connected", "disconnected") and state != coverage.state:
            coverage.state = state
            coverage.since = record["ts"]

    # -- queries ------------------------------------------------------------------------
    def query_totals(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        window = self._window(params.get("window"), required=False)
        exchange = _scope_param(params.get("exchange"), _exchange)
        coin = _scope_param(params.get("coin"), coin_named)
        _no_other(params, {"window", "exchange", "coin"})
        records = [
            record
            for record in self.totals.values()
            if (window is None or record["window"] == window)
            and (exchange is _ANY or record["exchange"] == exchange)
            and (coin is _ANY or record["coin"] == coin)
        ]
        order = {name: i for i, name in enumerate(self.windows)}
        records.sort(
            key=lambda r: (r["exchange"] or "", r["coin"] or "", order.get(r["window"], 99))
        )
        return {"as_of": now_ms, "windows": list(self.windows), "totals": records}

    def stream_filter(self, params: Mapping[str, str]) -> StreamFilter:
        """What a client of /api/stream follows: `window`, `exchange` and `coin` read as
        /api/totals reads them (BadRequest for anything else)."""
        window = self._window(params.get("window"), required=False)
        exchange = _scope_param(params.get("exchange"), _exchange)
        coin = _scope_param(params.get("coin"), coin_named)
        _no_other(params, {"window", "exchange", "coin"})
        return StreamFilter(
            window,
            None if exchange is _ANY else (exchange,),
            None if coin is _ANY else (coin,),
        )

    def query_breaches(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        limit = _limit(params.get("limit"), default=50, most=self.max_breaches)
        rule = params.get("rule")
        _no_other(params, {"limit", "rule"})
        cutoff = now_ms - DAY_MS
        chosen = [
            record
            for record in reversed(self.breaches)
            if (rule is None or record["rule"] == rule) and record.get("ts", now_ms) >= cutoff
        ]
        return {"breaches": chosen[:limit]}

    def query_largest(self, params: Mapping[str, str]) -> dict[str, Any]:
        window = self._window(params.get("window", "24h" if "24h" in self.windows else None))
        limit = _limit(params.get("limit"), default=10, most=100)
        _no_other(params, {"window", "limit"})
        orders = [
            record["largest"]
            for record in self.totals.values()
            if record["window"] == window
            and record["exchange"] is not None
            and record["coin"] is not None
            and record.get("largest")
        ]
        orders.sort(key=lambda o: (-o["notional_usd"], o["ts"], o["id"]))
        return {"window": window, "largest": orders[:limit]}

    def query_coverage(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        _no_other(params, set())
        cutoff = now_ms - DAY_MS
        venues = []
        for name in sorted(self.coverage):
            coverage = self.coverage[name]
            coverage.gaps = [gap for gap in coverage.gaps if gap["end"] >= cutoff]
            _, lower_bound, note = self.feeds.get(name, (coverage.exchange, False, ""))
            venues.append(
                {
                    "exchange": coverage.exchange,
                    "feed": name,
                    "state": coverage.state,
                    "since": coverage.since,
                    "gaps_24h": list(coverage.gaps),
                    "lower_bound": lower_bound,
                    "note": note,
                    "instruments_listed": coverage.listed,
                    "instruments_subscribed": coverage.subscribed,
                    "rejected": list(coverage.rejected),
                    "wildcard": coverage.wildcard,
                    "coverage_as_of": coverage.coverage_as_of,
                    "stale": coverage.stale(now_ms),
                    "heartbeat_as_of": coverage.heartbeat_as_of,
                }
            )
        return {"venues": venues}

    def _window(self, value: str | None, *, required: bool = True) -> str | None:
        if value is None:
            if required:
                raise BadRequest(f"window is required; one of {', '.join(self.windows)}")
            return None
        if value not in self.windows:
            raise BadRequest(f"unknown window {value!r}; one of {', '.join(self.windows)}")
        return value


_ANY = object()  # no filter on this part of the scope


def _breach_order(record: dict[str, Any]) -> tuple[Any, ...]:
    """Time, then enough of the record to order records of the same millisecond alike."""
    return (
        record.get("ts", 0),
        record.get("rule", ""),
        record.get("exchange") or "",
        record.get("coin") or "",
        record.get("state", ""),
        record.get("event_id") or "",
    )


_TEXT_OR_NONE = (str, type(None))
_NUMBER = (int, float)
_TOTALS_SHAPE = {
    "exchange": _TEXT_OR_NONE,
    "coin": _TEXT_OR_NONE,
    "window": (str,),
    "as_of": (int,),
    "count": (int,),
    "total_usd": _NUMBER,
    "long_usd": _NUMBER,
    "short_usd": _NUMBER,
    "largest": (dict, type(None)),
}
_LARGEST_SHAPE = {"id": (str,), "notional_usd": _NUMBER, "ts": (int,)}
_BREACH_SHAPE = {
    "rule": (str,),
    "state": (str,),
    "ts": (int,),
    "exchange": _TEXT_OR_NONE,
    "coin": _TEXT_OR_NONE,
    "event_id": _TEXT_OR_NONE,
}
_GAP_SHAPE = {"gap_start": (int,), "gap_end": (int,)}
_TS_SHAPE = {"ts": (int,)}
_COVERAGE_SHAPE = {
    "ts": (int,),
    "instruments_listed": (int,),
    "instruments_subscribed": (int,),
    "rejected": (list,),
}
_HEARTBEAT_SHAPE = {"ts": (int,), "interval_s": _NUMBER}
_REJECTED_SHAPE = {"topic": (str,), "reason": (str,)}


def _subscriptions(record: dict[str, Any]) -> tuple[int, int, list[dict[str, str]], bool]:
    """Listed, subscribed, rejected topics and wildcard of a `coverage` status record, or
    ValueError. Only the documented fields of each rejected topic are kept."""
    _require(record, _COVERAGE_SHAPE, "coverage")
    listed, subscribed = record["instruments_listed"], record["instruments_subscribed"]
    if listed < 0 or subscribed < 0:
        raise ValueError(f"not a coverage record: counts {subscribed}/{listed}")
    rejected = []
    for topic in record["rejected"]:
        if not isinstance(topic, dict):
            raise ValueError(f"not a coverage record: rejected topic {topic!r}")
        _require(topic, _REJECTED_SHAPE, "rejected topic")
        rejected.append({"topic": topic["topic"], "reason": topic["reason"]})
    wildcard = record.get("wildcard", False)
    if not isinstance(wildcard, bool):
        raise ValueError(f"not a coverage record: wildcard={wildcard!r}")
    return listed, subscribed, rejected, wildcard


def _require(record: Mapping[str, Any], shape: Mapping[str, tuple[type, ...]], what: str) -> None:
    """The fields the view sorts, sums or filters on, with their types."""
    for name, types in shape.items():
        value = record.get(name)
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"not a {what} record: {name}={value!r}")


def _scope_param(value: str | None, name: Callable[[str], str]) -> Any:
    """_ANY when absent, None for the all-scope, else the value as `name` reads it."""
    if value is None:
        return _ANY
    value = value.strip()
    if not value:
        raise BadRequest("an empty exchange or coin filter; leave it out, or use `all`")
    if value in ("*", "all"):
        return None
    return name(value)


def _exchange(value: str) -> str:
    exchange = value.lower()
    if exchange not in EXCHANGES:
        raise BadRequest(f"unknown exchange {exchange!r}; one of {', '.join(sorted(EXCHANGES))}")
    return exchange


def _limit(value: str | None, *, default: int, most: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise BadRequest(f"limit must be a whole number from 1 to {most}, not {value!r}")
    return int(value)


def _no_other(params: Iterable[str], allowed: set[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise BadRequest(f"unknown parameter {unknown[0]!r}; this endpoint takes {takes}")
