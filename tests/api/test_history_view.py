"""/api/history's store: exact sums per interval, the fine and hourly tiers, bad input."""

from __future__ import annotations

import json
import time

import orjson
import pytest

from stream.config import load_settings
from stream.engine.history import history_record
from stream.engine.totals import Largest, ScopeSums
from stream.view.consumer import ViewFeeder
from stream.view.fanout import StreamFilter
from stream.view.history import HistoryStore, _decode
from stream.view.state import BadRequest, GlobalView
from stream.worker.web import OPENAPI
from tests.api.test_openapi import answer_schema, conforms
from tests.api.test_view import FEEDS, WINDOWS

MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000
T0 = 1_700_006_400_000  # 2023-11-15T00:00:00Z, a day boundary


def largest(notional: float, ts: int, id_: str = "x") -> Largest:
    return Largest(notional, ts, id_, "bybit", "BTCUSDT", "long", 100.0, notional / 100.0)


def record(
    start: int,
    long_micros: int,
    short_micros: int = 0,
    counts: tuple[int, int] = (1, 0),
    exchange: str | None = None,
    coin: str | None = None,
    big: Largest | None = None,
) -> dict:
    big = big or largest(1.0, start)
    entry = ScopeSums(long_micros, short_micros, *counts, big)
    return history_record(exchange, coin, start, MINUTE, entry)


def test_intervals_sum_exactly_and_every_one_is_present() -> None:
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    # 0.1 + 0.2 in floats is 0.30000000000000004: the micro-dollars sum to exactly 0.3
    store.add(record(T0, 100_000, big=largest(0.1, T0, "a")), T0)
    store.add(record(T0 + MINUTE, 200_000, 5, (1, 1), big=largest(0.2, T0 + MINUTE, "b")), T0)
    store.add(record(T0 + 11 * MINUTE, 1, coin="BTC"), T0)  # another scope
    answer = store.query({"from": str(T0), "to": str(T0 + 15 * MINUTE)}, T0 + DAY)
    assert answer["interval"] == "5m"
    assert answer["interval_ms"] == 300_000
    assert (answer["from"], answer["to"]) == (T0, T0 + 15 * MINUTE)
    assert (answer["exchange"], answer["coin"]) == (None, None)
    first, second, third = answer["buckets"]
    assert first == {
        "start": T0,
        "long_usd": 0.3,
        "short_usd": 0.000005,
        "total_usd": 0.300005,
        "count": 3,
        "long_count": 2,
        "short_count": 1,
        "largest": {
            "id": "b",
            "exchange": "bybit",
            "symbol": "BTCUSDT",
            "side": "long",
            "price": 100.0,
            "quantity": 0.002,
            "notional_usd": 0.2,
            "ts": T0 + MINUTE,
        },
    }
    for empty, start in ((second, T0 + 5 * MINUTE), (third, T0 + 10 * MINUTE)):
        assert empty == {
            "start": start,
            "long_usd": 0.0,
            "short_usd": 0.0,
            "total_usd": 0.0,
            "count": 0,
            "long_count": 0,
            "short_count": 0,
            "largest": None,
        }
    coin = store.query({"from": str(T0), "to": str(T0 + 15 * MINUTE), "coin": "btc"}, T0)
    assert [b["long_usd"] for b in coin["buckets"]] == [0.0, 0.0, 0.000001]
    assert coin["coin"] == "BTC"


def test_a_bucket_published_again_replaces_its_earlier_record_not_the_reverse() -> None:
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    store.add(record(T0, 1_000_000), T0)
    store.add(record(T0, 3_000_000, counts=(2, 0)), T0)  # a late event changed it
    store.add(record(T0, 3_000_000, counts=(2, 0)), T0)  # and a repeat after a crash
    store.add(record(T0, 1_000_000), T0)  # the first version read again (a reconnect)
    (bucket,) = store.query({"from": str(T0), "to": str(T0 + MINUTE), "interval": "1m"}, T0)[
        "buckets"
    ]
    assert (bucket["long_usd"], bucket["count"]) == (3.0, 2)


def test_old_buckets_fold_into_hours_and_leave_after_the_retention() -> None:
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    for minute in range(0, 120, 7):  # two hours, uncompacted versions first
        store.add(record(T0 + minute * MINUTE, 1), T0)
        store.add(record(T0 + minute * MINUTE, 1_000_001 + minute), T0)
    hours = {"from": str(T0), "to": str(T0 + 2 * HOUR), "interval": "1h"}
    before = store.query(hours, T0 + 3 * HOUR)
    later = T0 + 5 * DAY
    store.settle(later)
    assert store.fine == {}
    assert store.query(hours, later) == before
    # read again (a reconnect), and a record folded straight in: still counted once
    store.add(record(T0 + 7 * MINUTE, 1_000_008), later)
    assert store.query(hours, later) == before
    assert [b["count"] for b in before["buckets"]] == [9, 9]
    # 9 x 1_000_001 + (0 + 7 + ... + 56) = 9_000_009 + 252 micro-dollars, exactly
    assert before["buckets"][0]["long_usd"] == 9.000261
    with pytest.raises(BadRequest, match="finer than 1h"):
        store.query({**hours, "interval": "5m"}, later)
    store.maintain(T0 + 31 * DAY)
    assert store.hourly == {}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"interval": "30s"}, "from 1m to 1d"),
        ({"interval": "2d"}, "from 1m to 1d"),
        ({"interval": "soon"}, "not a duration"),
        ({"from": "10", "to": "10"}, "must be before"),
        ({"from": "yesterday"}, "epoch milliseconds"),
        ({"exchange": "nasdaq"}, "unknown exchange"),
        ({"coin": ""}, "empty exchange or coin"),
        ({"window": "5m"}, "unknown parameter 'window'"),
        ({"from": "0", "interval": "1m"}, "at most 10000"),
    ],
)
def test_bad_parameters_are_refused_with_a_reason(params: dict, message: str) -> None:
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    with pytest.raises(BadRequest, match=message):
        store.query(params, T0)


@pytest.mark.parametrize(
    "change",
    [
        {"long_micro_usd": 1.5},
        {"start": "x"},
        {"start": T0 + 1},
        {"resolution_ms": 5 * MINUTE},
        {"long_count": -1},
        {"largest": {"id": "x"}},
        {"long_micro_usd": 2**63},  # more than a row holds
        {"long_count": True},  # a bool is no count
        {"coin": 7},
        {"largest": {**record(T0, 1)["largest"], "price": "100"}},
        {"largest": {**record(T0, 1)["largest"], "ts": 1.5}},
    ],
)
def test_a_record_not_shaped_like_history_is_refused_and_changes_nothing(change: dict) -> None:
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    with pytest.raises(ValueError, match=r"history|largest|resolution|negative"):
        store.add({**record(T0, 1), **change}, T0)
    assert store.fine == {}


def test_the_answer_is_as_documented() -> None:
    spec = json.loads(OPENAPI.read_text())
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    store.add(record(T0, 100_000, exchange="okx", coin="ETH"), T0)
    answer = store.query({"exchange": "okx", "coin": "eth", "to": str(T0 + HOUR)}, T0 + HOUR)
    assert answer["buckets"][-12]["largest"] is not None  # one with, the others without
    conforms(spec, answer_schema(spec, "/api/history"), answer, "/api/history")
    conforms(spec, answer_schema(spec, "/api/history", "400"), {"error": "why"}, "/api/history")


def test_the_feeder_takes_history_records_tells_them_and_skips_bad_ones() -> None:
    feeder = ViewFeeder(load_settings(), GlobalView(WINDOWS, FEEDS))
    topic = feeder.topics.history
    now = int(time.time() * 1000) // MINUTE * MINUTE  # the feeder folds by the clock
    past = record(now - MINUTE, 1_000_000, coin="ETH")
    feeder._apply(topic, f"*:ETH:{now - MINUTE}".encode(), orjson.dumps(past))
    assert not feeder.fanout.tick(0.0)  # read while loading: the past, told to nobody
    feeder.history.settle(now)  # the topic read to its end
    good = record(now, 2_500_000, coin="ETH")
    feeder._apply(topic, f"*:ETH:{now}".encode(), orjson.dumps(good))
    feeder._apply(topic, b"*:ETH:1", b'{"start": "soon"}')  # not a history record
    feeder._apply(topic, f"*:ETH:{now}".encode(), None)  # a tombstone: not ours, ignored
    assert feeder.unreadable == 1
    assert list(feeder.history.fine) == [(None, "ETH")]
    rows = feeder.history.fine[(None, "ETH")]
    assert [_decode(rows[now - MINUTE])[:4], _decode(rows[now])[:4]] == [
        (1_000_000, 0, 1, 0),
        (2_500_000, 0, 1, 0),
    ]
    assert feeder.fanout.tick(0.0)
    frame = feeder.fanout.since(0, StreamFilter(coin=("ETH",)))
    assert frame == b"event: history\ndata: " + orjson.dumps(good) + b"\n\n"
    assert feeder.fanout.since(0, StreamFilter(coin=("BTC",))) == b""


def test_a_kept_row_gives_back_every_field_of_its_largest_order() -> None:
    """Rows are kept packed: texts of any length and alphabet, and numbers, come back."""
    store = HistoryStore(MINUTE, 2 * DAY, 30 * DAY)
    big = Largest(
        1234.5, T0 + 7, "ü-\x1f-" + "x" * 300, "okx", "ÉTH-USDT-SWAP", "short", 0.25, 4938.0
    )
    store.add(record(T0, 7, 9, (2, 3), exchange="okx", coin="ETH", big=big), T0)
    store.add(record(T0 + MINUTE, 1, 0, (1, 0), exchange="okx", coin="ETH"), T0)
    params = {"from": str(T0), "to": str(T0 + 2 * MINUTE), "interval": "1m", "coin": "eth"}
    first, second = store.query({**params, "exchange": "okx"}, T0)["buckets"]
    assert (first["long_usd"], first["short_usd"], first["long_count"], first["short_count"]) == (
        0.000007,
        0.000009,
        2,
        3,
    )
    assert first["largest"] == {
        "id": big.id,
        "exchange": "okx",
        "symbol": "ÉTH-USDT-SWAP",
        "side": "short",
        "price": 0.25,
        "quantity": 4938.0,
        "notional_usd": 1234.5,
        "ts": T0 + 7,
    }
    assert second["largest"]["id"] == "x"
