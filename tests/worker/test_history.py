"""History records from the worker's bucket state, and when they are due (pure parts)."""

from __future__ import annotations

from stream.engine.aggregation import Aggregation
from stream.engine.history import HistoryClock, bucket_records, history_key, history_record
from stream.engine.totals import Largest, ScopeSums

MINUTE = 60_000
T0 = 1_700_000_040_000  # 2023-11-14T22:14:00Z, a minute boundary


def event(n: int, ts: int, notional: float, side: str = "long", exchange: str = "bybit") -> dict:
    return {
        "id": f"e{n}",
        "exchange": exchange,
        "symbol": "BTCUSDT",
        "coin": "BTC",
        "side": side,
        "price": 100_000.0,
        "quantity": notional / 100_000.0,
        "notional_usd": notional,
        "ts": ts,
    }


def test_record_is_the_buckets_exact_sums() -> None:
    largest = Largest(2_000.5, T0 + 5, "e1", "bybit", "BTCUSDT", "short", 100_000.0, 0.020005)
    entry = ScopeSums(1_500_000, 2_250_001, 2, 1, largest)
    record = history_record("bybit", "BTC", T0, MINUTE, entry)
    assert history_key("bybit", "BTC", T0) == f"bybit:BTC:{T0}"
    assert history_key(None, None, T0) == f"*:*:{T0}"
    assert record == {
        "exchange": "bybit",
        "coin": "BTC",
        "start": T0,
        "resolution_ms": MINUTE,
        "long_usd": 1.5,
        "short_usd": 2.250001,
        "total_usd": 3.750001,
        "long_micro_usd": 1_500_000,
        "short_micro_usd": 2_250_001,
        "count": 3,
        "long_count": 2,
        "short_count": 1,
        "largest": {
            "id": "e1",
            "exchange": "bybit",
            "symbol": "BTCUSDT",
            "side": "short",
            "price": 100_000.0,
            "quantity": 0.020005,
            "notional_usd": 2_000.5,
            "ts": T0 + 5,
        },
    }


def test_every_scope_of_a_bucket_and_a_redelivered_batch_changes_nothing() -> None:
    aggregation = Aggregation({"1h": 3_600_000}, MINUTE)
    aggregation.load({}, T0 + MINUTE)
    batch = [event(1, T0 + 1_000, 1_000.25), event(2, T0 + 2_000, 3.5, "short", "okx")]
    aggregation.apply_batch(batch, 7, T0 + MINUTE)
    bucket = T0 // MINUTE
    first = dict(bucket_records(bucket, aggregation.buckets[bucket], MINUTE))
    assert sorted(first) == [
        f"*:*:{T0}",
        f"*:BTC:{T0}",
        f"bybit:*:{T0}",
        f"bybit:BTC:{T0}",
        f"okx:*:{T0}",
        f"okx:BTC:{T0}",
    ]
    market = first[f"*:*:{T0}"]
    assert (market["long_micro_usd"], market["short_micro_usd"]) == (1_000_250_000, 3_500_000)
    assert (market["long_count"], market["short_count"]) == (1, 1)
    assert market["largest"]["id"] == "e1"
    assert first[f"okx:*:{T0}"]["short_usd"] == 3.5
    # the same batch again (delivered again after a crash): the bucket holds it already
    changed, _ = aggregation.apply_batch(batch, 7, T0 + MINUTE)
    assert changed == {}
    assert dict(bucket_records(bucket, aggregation.buckets[bucket], MINUTE)) == first


def test_clock_closes_buckets_once_and_republishes_late_changes() -> None:
    clock = HistoryClock(MINUTE)
    b0 = T0 // MINUTE
    buckets = {b0: {}, b0 + 1: {}, b0 + 2: {}}
    due, through = clock.closing(buckets, (b0 + 2) * MINUTE + 5)  # b0+2 still open
    assert (due, through) == ([b0, b0 + 1], b0 + 1)
    clock.closed(through)
    assert clock.closing(buckets, (b0 + 2) * MINUTE + 9) == ([], b0 + 1)
    assert clock.reopened({b0: {}, b0 + 2: {}}) == [b0]  # late event in a closed bucket
    assert clock.unsaved_mark() == {"closed_through": b0 + 1}
    assert clock.unsaved_mark() is None  # written already
    # after a crash the table's (older) mark says what to publish again
    again = HistoryClock(MINUTE)
    again.load({"closed_through": b0})
    assert again.closing(buckets, (b0 + 3) * MINUTE)[0] == [b0 + 1, b0 + 2]
    fresh = HistoryClock(MINUTE)
    fresh.load(None)
    assert fresh.reopened({b0: {}}) == []  # nothing closed yet: the tick publishes it
    assert fresh.closing(buckets, (b0 + 3) * MINUTE)[0] == [b0, b0 + 1, b0 + 2]
