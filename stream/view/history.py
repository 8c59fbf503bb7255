"""The series behind /api/history, built from `liquidations.history` records. Pure: no Kafka.

Two tiers per scope, so memory stays bounded over the whole retention:
- fine: every bucket of the resolution (1m) as published, for `fine_horizon_ms` (a bucket can
  still change until it leaves the worker's longest window, so the horizon is at least that);
- hourly: once a bucket is older than the horizon it is folded into its hour (sums, counts,
  largest order, and a bit per minute saying which buckets the hour already holds, so the
  same record read again is not counted twice), kept for the retention.
Sums are integer micro-dollars from the records' exact fields, converted to USD once per
answered bucket, so an interval's total is the same whichever tier it came from.

A fine row is one `bytes` object (the sums and the largest order packed, see `_encode`): a
day at 1m over a few thousand scopes is millions of rows, and as tuples of Python numbers
and strings each cost about 500 bytes and was walked by every full garbage collection;
packed, about 200 bytes, and the collector does not look at bytes at all.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Mapping
from typing import Any

from stream.config import parse_duration_ms
from stream.symbols import coin_named
from stream.view.state import _ANY, BadRequest, _exchange, _no_other, _require, _scope_param

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
MAX_BUCKETS = 10_000  # per answer: 1m over a week; ask a coarser interval for more

Scope = tuple[str | None, str | None]
# (notional_usd, ts, id, exchange, symbol, side, price, quantity): the largest order, packed
Packed = tuple[Any, ...]
# fine row, decoded: (long_micro_usd, short_micro_usd, long_count, short_count, largest)
Row = tuple[int, int, int, int, Packed | None]
# fine row, as kept: the four sums; with a largest order, then its notional, ts, price and
# quantity, the UTF-8 lengths of its id, exchange, symbol and side, and those four texts
_SUMS = struct.Struct("<qqqq")
_LARGEST = struct.Struct("<qqqqdqddHHHH")

_RECORD_SHAPE = {
    "exchange": (str, type(None)),
    "coin": (str, type(None)),
    "start": (int,),
    "resolution_ms": (int,),
    "long_micro_usd": (int,),
    "short_micro_usd": (int,),
    "long_count": (int,),
    "short_count": (int,),
    "largest": (dict, type(None)),
}
_LARGEST_FIELDS = ("notional_usd", "ts", "id", "exchange", "symbol", "side", "price", "quantity")
_LARGEST_SHAPE = {
    "notional_usd": (int, float),
    "ts": (int,),
    "id": (str,),
    "exchange": (str,),
    "symbol": (str,),
    "side": (str,),
    "price": (int, float),
    "quantity": (int, float),
}


_NUMBER = (int, float)


def pack_largest(largest: Mapping[str, Any] | None) -> Packed | None:
    if largest is None:
        return None
    values: list[Any] = [largest.get(name) for name in _LARGEST_FIELDS]
    notional, ts, id_, exchange, symbol, side, price, quantity = values
    # the usual case checked at once (millions at a start); else the field-by-field check,
    # which says what is wrong
    if not (
        type(notional) in _NUMBER
        and type(ts) is int
        and type(id_) is str
        and type(exchange) is str
        and type(symbol) is str
        and type(side) is str
        and type(price) in _NUMBER
        and type(quantity) in _NUMBER
    ):
        _require(largest, _LARGEST_SHAPE, "largest order")
    # few distinct values: one string object each
    intern = sys.intern
    return (notional, ts, id_, intern(exchange), intern(symbol), intern(side), price, quantity)


def _shaped(record: Mapping[str, Any]) -> bool:
    """Every field of a history record there with its type (the usual case, checked at once)."""
    get = record.get
    exchange, coin, largest = get("exchange"), get("coin"), get("largest")
    return (
        (exchange is None or type(exchange) is str)
        and (coin is None or type(coin) is str)
        and type(get("start")) is int
        and type(get("resolution_ms")) is int
        and type(get("long_micro_usd")) is int
        and type(get("short_micro_usd")) is int
        and type(get("long_count")) is int
        and type(get("short_count")) is int
        and (largest is None or type(largest) is dict)
    )


def _encode(
    long_micros: int, short_micros: int, long_n: int, short_n: int, largest: Packed | None
) -> bytes:
    """A fine row as kept. Raises ValueError for numbers or texts no row can hold."""
    try:
        if largest is None:
            return _SUMS.pack(long_micros, short_micros, long_n, short_n)
        notional, ts, id_, exchange, symbol, side, price, quantity = largest
        texts = [id_.encode(), exchange.encode(), symbol.encode(), side.encode()]
        sizes = map(len, texts)
        head = _LARGEST.pack(
            long_micros, short_micros, long_n, short_n, notional, ts, price, quantity, *sizes
        )
    except struct.error as exc:
        raise ValueError(f"history record out of range: {exc}") from None
    return head + b"".join(texts)


def _counts(row: bytes) -> int:
    """The events a kept row counts (long and short)."""
    return sum(_SUMS.unpack_from(row)[2:])


def _decode(row: bytes) -> Row:
    if len(row) == _SUMS.size:
        return (*_SUMS.unpack(row), None)
    fields = _LARGEST.unpack_from(row)
    texts, at = [], _LARGEST.size
    for size in fields[8:]:
        texts.append(row[at : at + size].decode())
        at += size
    id_, exchange, symbol, side = texts
    largest = (fields[4], fields[5], id_, exchange, symbol, side, fields[6], fields[7])
    return (fields[0], fields[1], fields[2], fields[3], largest)


def unpack_largest(packed: Packed | None) -> dict[str, Any] | None:
    if packed is None:
        return None
    notional, ts, id_, exchange, symbol, side, price, quantity = packed
    return {
        "id": id_,
        "exchange": exchange,
        "symbol": symbol,
        "side": side,
        "price": price,
        "quantity": quantity,
        "notional_usd": notional,
        "ts": ts,
    }


def _bigger(a: Packed, b: Packed) -> bool:
    """As the worker orders them: larger notional, then the earlier, then the smaller id."""
    if a[0] != b[0]:
        return bool(a[0] > b[0])
    if a[1] != b[1]:
        return bool(a[1] < b[1])
    return bool(a[2] < b[2])


def _max(a: Packed | None, b: Packed | None) -> Packed | None:
    if a is None:
        return b
    if b is None:
        return a
    return b if _bigger(b, a) else a


class HistoryStore:
    """Latest record per (scope, bucket), the fine and hourly tiers, and the queries."""

    def __init__(
        self, resolution_ms: int, fine_horizon_ms: int | None, retention_ms: int | None
    ) -> None:
        """`fine_horizon_ms` None: nothing is folded (the offline report keeps every bucket)."""
        self.resolution_ms = resolution_ms
        self.fine_horizon_ms = fine_horizon_ms
        self.retention_ms = retention_ms
        self.fine: dict[Scope, dict[int, bytes]] = {}  # scope -> bucket start -> row
        # hour start -> [long, short, long_n, short_n, largest, minutes held (bit mask)]
        self.hourly: dict[Scope, dict[int, list[Any]]] = {}
        self.settled = False  # the topic was read to its end once: folding is safe from here
        self._maintained_hour: int | None = None
        self.version = 0

    # -- input --------------------------------------------------------------------------
    def add(self, record: Mapping[str, Any], now_ms: int) -> None:
        """One history record (of a key, the one with the most events wins: the latest).
        Raises ValueError, changing nothing, for a record not shaped like one."""
        if not _shaped(record):
            _require(record, _RECORD_SHAPE, "history")  # says which field is wrong
        if record["resolution_ms"] != self.resolution_ms or record["start"] % self.resolution_ms:
            raise ValueError(
                f"history record of resolution {record['resolution_ms']} ms at "
                f"{record['start']}; this view sums {self.resolution_ms} ms buckets"
            )
        long_n, short_n = record["long_count"], record["short_count"]
        long_micros, short_micros = record["long_micro_usd"], record["short_micro_usd"]
        if min(long_n, short_n, long_micros, short_micros) < 0:
            raise ValueError(f"history record with negative sums: {dict(record)!r}")
        largest = pack_largest(record["largest"])
        scope = (record["exchange"], record["coin"])
        start = record["start"]
        if self.settled and self._cutoff(now_ms) is not None and start < self._cutoff(now_ms):
            _encode(long_micros, short_micros, long_n, short_n, largest)  # the same checks
            self.version += 1
            self._fold(scope, start, (long_micros, short_micros, long_n, short_n, largest))
            return  # read again, or published after a long outage
        row = _encode(long_micros, short_micros, long_n, short_n, largest)
        self.version += 1
        rows = self.fine.get(scope)
        if rows is None:
            rows = self.fine[scope] = {}
        held = rows.get(start)
        # A bucket only gains events: a record with fewer is an earlier version of it, read
        # again after a reconnect before the latest one (the topic read from the beginning).
        if held is None or _counts(held) <= long_n + short_n:
            rows[start] = row

    def settle(self, now_ms: int) -> None:
        """The topic was read up to its end: fold and expire from here on."""
        self.settled = True
        self.maintain(now_ms)

    def maintain(self, now_ms: int) -> None:
        """Fold buckets past the fine horizon into their hours; forget what left retention."""
        if not self.settled or now_ms // HOUR_MS == self._maintained_hour:
            return  # the cutoff and the retention move by whole hours
        self._maintained_hour = now_ms // HOUR_MS
        cutoff = self._cutoff(now_ms)
        if cutoff is not None:
            for scope, rows in list(self.fine.items()):
                old = [start for start in rows if start < cutoff]
                for start in old:
                    self._fold(scope, start, _decode(rows.pop(start)))
                if not rows:
                    del self.fine[scope]
        if self.retention_ms is not None:
            oldest = now_ms - self.retention_ms
            for scope, hours in list(self.hourly.items()):
                for hour in [hour for hour in hours if hour + HOUR_MS <= oldest]:
                    del hours[hour]
                if not hours:
                    del self.hourly[scope]

    def _cutoff(self, now_ms: int) -> int | None:
        if self.fine_horizon_ms is None:
            return None
        return (now_ms - self.fine_horizon_ms) // HOUR_MS * HOUR_MS  # whole hours only

    def _fold(self, scope: Scope, start: int, row: Row) -> None:
        hour = start // HOUR_MS * HOUR_MS
        bit = 1 << ((start - hour) // self.resolution_ms)
        hours = self.hourly.setdefault(scope, {})
        held = hours.get(hour)
        if held is None:
            held = hours[hour] = [0, 0, 0, 0, None, 0]
        elif held[5] & bit:
            return  # this bucket is in the hour already, final (past every window)
        for i in range(4):
            held[i] += row[i]
        held[4] = _max(held[4], row[4])
        held[5] |= bit

    # -- queries ------------------------------------------------------------------------
    def query(self, params: Mapping[str, str], now_ms: int) -> dict[str, Any]:
        """/api/history: the series of one scope, every interval of [from, to) present."""
        interval_text = params.get("interval", "5m")
        interval_ms = self._interval(interval_text)
        exchange = _scope_param(params.get("exchange"), _exchange)
        coin = _scope_param(params.get("coin"), coin_named)
        _no_other(params, {"from", "to", "interval", "exchange", "coin"})
        to_ms = _time(params.get("to"), "to", now_ms)
        from_ms = _time(params.get("from"), "from", to_ms - DAY_MS)
        if from_ms >= to_ms:
            raise BadRequest(f"from ({from_ms}) must be before to ({to_ms})")
        start = from_ms // interval_ms * interval_ms
        end = -(-to_ms // interval_ms) * interval_ms
        count = (end - start) // interval_ms
        if count > MAX_BUCKETS:
            raise BadRequest(
                f"{count} intervals of {interval_text} from {from_ms} to {to_ms}; at most "
                f"{MAX_BUCKETS}: ask a coarser interval or a shorter range"
            )
        cutoff = self._cutoff(now_ms) if self.settled else None
        if interval_ms % HOUR_MS and cutoff is not None and start < cutoff:
            raise BadRequest(
                f"intervals finer than 1h are kept for the last {self.fine_horizon_ms} ms "
                f"(since {cutoff}); ask interval=1h (or a multiple) for older ranges"
            )
        scope = (None if exchange is _ANY else exchange, None if coin is _ANY else coin)
        sums = [[0, 0, 0, 0, None] for _ in range(count)]
        for hour, held in self.hourly.get(scope, {}).items():
            if start <= hour < end:
                _add(sums[(hour - start) // interval_ms], held)
        for bucket, row in self.fine.get(scope, {}).items():
            if start <= bucket < end:
                _add(sums[(bucket - start) // interval_ms], _decode(row))
        return {
            "interval": interval_text,
            "interval_ms": interval_ms,
            "from": start,
            "to": end,
            "exchange": scope[0],
            "coin": scope[1],
            "buckets": [_bucket(start + i * interval_ms, agg) for i, agg in enumerate(sums)],
        }

    def _interval(self, text: str) -> int:
        try:
            interval_ms = parse_duration_ms(text)
        except ValueError:
            raise BadRequest(f"interval {text!r} is not a duration like 1m, 5m, 1h or 1d") from None
        if not 60_000 <= interval_ms <= DAY_MS or interval_ms % self.resolution_ms:
            raise BadRequest(
                f"interval {text!r}: from 1m to 1d, a multiple of the resolution "
                f"({self.resolution_ms} ms)"
            )
        return interval_ms


def _time(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit():
        raise BadRequest(f"{name} must be a time in epoch milliseconds, not {value!r}")
    return int(value)


def _add(agg: list[Any], row: Any) -> None:
    agg[0] += row[0]
    agg[1] += row[1]
    agg[2] += row[2]
    agg[3] += row[3]
    agg[4] = _max(agg[4], row[4])


def _bucket(start_ms: int, agg: list[Any]) -> dict[str, Any]:
    long_micros, short_micros, long_count, short_count, largest = agg
    return {
        "start": start_ms,
        "long_usd": long_micros / 1_000_000,
        "short_usd": short_micros / 1_000_000,
        "total_usd": (long_micros + short_micros) / 1_000_000,
        "count": long_count + short_count,
        "long_count": long_count,
        "short_count": short_count,
        "largest": unpack_largest(largest),
    }
