"""What a day of history costs the view (stream.view.history) per active scope, measured.

A busy scope (a record every minute, each with a largest order) through the store as the view
feeds it: bytes held per scope-day while the 1m buckets are kept (the fine horizon), then
after they are folded into hours (the rest of the retention), with tracemalloc. Plus how long
the usual queries take. No Kafka: the store is pure, and the worker's own state does not grow
with history (it publishes from the buckets it keeps for the totals).
"""

from __future__ import annotations

import gc
import random
import time
import tracemalloc
from typing import Any

from stream.engine.history import history_record
from stream.engine.totals import Largest, ScopeSums
from stream.view.history import HistoryStore

MINUTE_MS = 60_000
DAY_MS = 86_400_000
EXCHANGES = ("binance", "bybit", "okx", "bitmex", "deribit", "htx", "gate", "bitfinex")
COINS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "PEPE", "BNB", "ADA", "AVAX", "LINK")


def _records(scopes: int, days: int, start_ms: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    pairs = [(e, c) for e in EXCHANGES for c in COINS]
    records = []
    for n in range(scopes):
        exchange, coin = pairs[n % len(pairs)]
        coin_scope = f"{coin}{n // len(pairs)}" if n >= len(pairs) else coin
        for minute in range(days * 1_440):
            start = start_ms + minute * MINUTE_MS
            notional = rng.lognormvariate(8.5, 1.6)
            largest = Largest(
                round(notional, 6),
                start + rng.randrange(MINUTE_MS),
                f"{exchange}-{rng.getrandbits(48):x}",
                exchange,
                f"{coin}USDT",
                "long" if rng.random() < 0.6 else "short",
                rng.uniform(0.5, 100_000.0),
                rng.uniform(0.001, 1_000.0),
            )
            long_micros = rng.randrange(10**12)
            short_micros = rng.randrange(10**12)
            long_count, short_count = rng.randrange(1, 300), rng.randrange(0, 300)
            entry = ScopeSums(long_micros, short_micros, long_count, short_count, largest)
            records.append(history_record(exchange, coin_scope, start, MINUTE_MS, entry))
    return records


def _timed(query: Any) -> float:
    """Milliseconds of one answer (the median of 20)."""
    times = []
    for _ in range(20):
        began = time.perf_counter()
        answer = query()
        times.append((time.perf_counter() - began) * 1000)
    assert sum(b["count"] for b in answer["buckets"]) > 0
    return sorted(times)[len(times) // 2]


def measure_history_memory(scopes: int = 50, days: int = 2) -> dict[str, Any]:
    """Bytes per busy scope and day in each tier, and query times."""
    start_ms = (int(time.time() * 1000) // DAY_MS - days - 1) * DAY_MS
    records = _records(scopes, days, start_ms, seed=1)
    now = start_ms + days * DAY_MS

    gc.collect()
    tracemalloc.start()  # one session: what folding frees is counted too
    try:
        base = tracemalloc.get_traced_memory()[0]
        store = HistoryStore(MINUTE_MS, 30 * DAY_MS, 30 * DAY_MS)
        for record in records:
            store.add(record, now)
        gc.collect()
        fine_bytes = tracemalloc.get_traced_memory()[0] - base
        store.fine_horizon_ms = 0
        store.settle(now + DAY_MS)  # every bucket past the horizon: folded into its hour
        gc.collect()
        hourly_bytes = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert not store.fine
    scope = {"exchange": "binance", "coin": "BTC"}
    span = {"from": str(start_ms), "to": str(now + DAY_MS)}
    query_1h_ms = _timed(lambda: store.query({**scope, **span, "interval": "1h"}, now + DAY_MS))
    fine = HistoryStore(MINUTE_MS, 30 * DAY_MS, 30 * DAY_MS)  # untraced, for query times
    for record in records:
        fine.add(record, now)
    query_5m_24h_ms = _timed(lambda: fine.query({**scope, "interval": "5m", "to": str(now)}, now))
    scope_days = scopes * days
    fine_per = fine_bytes / scope_days
    hourly_per = hourly_bytes / scope_days
    return {
        "scopes": scopes,
        "days": days,
        "records": len(records),
        "fine_bytes_per_scope_day": round(fine_per),
        "hourly_bytes_per_scope_day": round(hourly_per),
        # defaults: 2 days of 1m buckets, 30 days of hours, for one busy scope
        "default_bytes_per_busy_scope": round(2 * fine_per + 30 * hourly_per),
        "query_5m_24h_ms": round(query_5m_24h_ms, 2),
        "query_1h_3d_ms": round(query_1h_ms, 2),
    }


if __name__ == "__main__":
    print(measure_history_memory())
