"""The worker's bucketed aggregation against a brute-force reference (hypothesis)."""

from __future__ import annotations

import copy

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine.aggregation import Aggregation, batch_events
from stream.engine.buckets import decode_bucket, encode_bucket
from stream.errors import Rejected
from stream.schema import make_event as schema_event
from stream.worker.batcher import batch_value
from tests.worker.reference import accepted, brute_force_totals

RESOLUTION_MS = 60_000
WINDOWS_MS = {"5m": 300_000, "15m": 900_000, "1h": 3_600_000}
BASE_MS = 1_762_290_000_000 - 1_762_290_000_000 % RESOLUTION_MS  # a bucket edge


def make_event(n: int, ts: int, exchange: str, coin: str, side: str, notional: float) -> dict:
    return {
        "id": f"e{n}",
        "exchange": exchange,
        "symbol": f"{coin}USDT",
        "coin": coin,
        "side": side,
        "price": 1.0,
        "quantity": notional,
        "notional_usd": notional,
        "ts": ts,
    }


def check_snapshot(aggregation: Aggregation, events: list[dict], at_ms: int) -> None:
    expected = brute_force_totals(events, at_ms, WINDOWS_MS, RESOLUTION_MS)
    records = aggregation.snapshot(at_ms)
    got = {(r["exchange"], r["coin"], r["window"]): r for r in records}
    longest = max(WINDOWS_MS, key=WINDOWS_MS.__getitem__)
    scopes = {(exchange, coin) for exchange, coin, window in expected if window == longest}
    assert set(got) == {(e, c, w) for e, c in scopes for w in WINDOWS_MS}
    for key, record in got.items():
        if key not in expected:  # a scope of the longest window, empty in this one
            assert record["count"] == 0 and record["total_usd"] == 0 and record["largest"] is None
    for key, want in expected.items():
        record = got[key]
        # Micro-dollar sums: within half a micro-dollar per event of the exact float sum.
        tolerance = 1e-6 * (want["long_count"] + want["short_count"])
        assert record["long_usd"] == pytest.approx(want["long_usd"], rel=1e-12, abs=tolerance)
        assert record["short_usd"] == pytest.approx(want["short_usd"], rel=1e-12, abs=tolerance)
        assert record["long_count"] == want["long_count"]
        assert record["short_count"] == want["short_count"]
        assert record["count"] == want["long_count"] + want["short_count"]
        assert record["largest"]["id"] == want["largest_id"]
        assert record["as_of"] == at_ms


# Offsets from BASE_MS: bucket edges (multiples of 60 s) are over-represented on purpose.
offsets_ms = st.one_of(
    st.integers(min_value=-4_000_000, max_value=4_000_000),
    st.integers(min_value=-66, max_value=66).map(lambda k: k * RESOLUTION_MS),
    st.integers(min_value=-66, max_value=66).map(lambda k: k * RESOLUTION_MS - 1),
)
event_specs = st.tuples(
    offsets_ms,
    st.sampled_from(["binance", "okx", "bybit"]),
    st.sampled_from(["BTC", "ETH"]),
    st.sampled_from(["long", "short"]),
    st.one_of(st.floats(min_value=0.01, max_value=5e7), st.sampled_from([100.0, 100.0, 1e6])),
)
steps = st.lists(
    st.tuples(
        st.lists(event_specs, max_size=12),  # a batch
        st.integers(min_value=0, max_value=20 * RESOLUTION_MS),  # then the clock moves on
        st.booleans(),  # and maybe a publish tick happens
    ),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(steps=steps, start_offset=st.integers(min_value=-3_600_000, max_value=3_600_000))
def test_matches_brute_force(steps: list, start_offset: int) -> None:
    aggregation = Aggregation(WINDOWS_MS, RESOLUTION_MS)
    now = BASE_MS + start_offset
    aggregation.load({}, now)
    kept: list[dict] = []
    n = 0
    for offset, (specs, clock_step, tick) in enumerate(steps):
        batch = []
        for delta, exchange, coin, side, notional in specs:
            batch.append(make_event(n, BASE_MS + delta, exchange, coin, side, notional))
            n += 1
        _, rejects = aggregation.apply_batch(batch, offset, now)
        rejected_ids = {event["id"] for event, _ in rejects}
        for event in batch:
            ok = accepted(event, now, RESOLUTION_MS, 60)
            assert ok == (event["id"] not in rejected_ids)
            if ok:
                kept.append(event)
        now += clock_step
        if tick:
            list(aggregation.publish(now))
            aggregation.expire(now)
        check_snapshot(aggregation, kept, now)


@settings(max_examples=60, deadline=None)
@given(steps=steps)
def test_redelivered_batches_count_once_even_after_a_partial_crash(steps: list) -> None:
    """Persist some buckets of a batch (as a crash mid-flush would), reload, redeliver."""
    now = BASE_MS + 3_600_000
    whole = Aggregation(WINDOWS_MS, RESOLUTION_MS)
    whole.load({}, now)
    table: dict[int, bytes] = {}
    n = 0
    for offset, (specs, _, _) in enumerate(steps):
        batch = [
            make_event(n + i, BASE_MS + delta, exchange, coin, side, notional)
            for i, (delta, exchange, coin, side, notional) in enumerate(specs)
        ]
        n += len(batch)
        changed, _ = whole.apply_batch(batch, offset, now)
        persisted = sorted(changed)[: len(changed) // 2]  # the crash lost the rest
        for bucket in persisted:
            table[bucket] = encode_bucket(changed[bucket])
        recovered = Aggregation(WINDOWS_MS, RESOLUTION_MS)
        recovered.load({b: decode_bucket(v) for b, v in table.items()}, now)
        changed_again, _ = recovered.apply_batch(copy.deepcopy(batch), offset, now)
        for bucket, value in changed_again.items():
            table[bucket] = encode_bucket(value)
        final = Aggregation(WINDOWS_MS, RESOLUTION_MS)
        final.load({b: decode_bucket(v) for b, v in table.items()}, now)
        assert final.snapshot(now) == whole.snapshot(now)


def test_publish_reports_changes_once_and_empties_once() -> None:
    aggregation = Aggregation({"5m": 300_000}, RESOLUTION_MS)
    now = BASE_MS
    aggregation.load({}, now)
    aggregation.apply_batch([make_event(1, now, "okx", "BTC", "long", 250.0)], 0, now)
    first = dict(aggregation.publish(now))
    assert set(first) == {"*:*:5m", "*:BTC:5m", "okx:*:5m", "okx:BTC:5m"}
    assert first["okx:BTC:5m"]["total_usd"] == 250.0
    assert first["okx:BTC:5m"]["largest"]["id"] == "e1"
    assert dict(aggregation.publish(now + 1000)) == {}  # nothing changed
    later = now + 5 * RESOLUTION_MS
    emptied = dict(aggregation.publish(later))
    assert set(emptied) == set(first)
    assert all(
        r["count"] == 0 and r["total_usd"] == 0.0 and r["largest"] is None for r in emptied.values()
    )
    assert dict(aggregation.publish(later + RESOLUTION_MS)) == {}
    assert aggregation.expire(later + 3600_000) == [now // RESOLUTION_MS]


def test_a_window_that_emptied_while_no_worker_ran_is_published_as_zero() -> None:
    """The totals topic is compacted: after a restart, every key must be said again, or one
    whose window emptied during the downtime keeps its last non-empty record for good."""
    topic: dict[str, dict] = {}
    before = Aggregation(WINDOWS_MS, RESOLUTION_MS)
    before.load({}, BASE_MS)
    before.apply_batch([make_event(0, BASE_MS + 1_000, "okx", "SOL", "long", 50.0)], 0, BASE_MS)
    topic.update(before.publish(BASE_MS + 2_000))
    assert topic["okx:SOL:5m"]["count"] == 1

    restart_ms = BASE_MS + 10 * RESOLUTION_MS  # down for ten minutes: 5m is empty now
    after = Aggregation(WINDOWS_MS, RESOLUTION_MS)
    after.load(copy.deepcopy(before.buckets), restart_ms)
    topic.update(after.publish(restart_ms))
    truth = brute_force_totals(
        [make_event(0, BASE_MS + 1_000, "okx", "SOL", "long", 50.0)],
        restart_ms,
        WINDOWS_MS,
        RESOLUTION_MS,
    )
    for key, record in topic.items():
        want = truth.get((record["exchange"], record["coin"], record["window"]))
        assert record["count"] == (0 if want is None else want["long_count"]), key
    assert topic["okx:SOL:5m"]["count"] == 0 and topic["okx:SOL:1h"]["count"] == 1


def test_batch_events_keep_what_can_be_summed_and_name_the_rest() -> None:
    good = schema_event(
        exchange="okx",
        symbol="BTC-USDT-SWAP",
        coin="BTC",
        quote="USDT",
        contract_type="linear",
        side="long",
        price=100_000.0,
        quantity=0.5,
        notional_usd=50_000.0,
        ts=1_762_290_000_000,
        received_ts=1_762_290_000_001,
        id="g",
    ).to_dict()
    huge = {**good, "id": "h", "notional_usd": 1.7976931348623157e308}
    as_text = {**good, "id": "s", "price": "100000"}  # valid, not canonical: normalized
    value = batch_value(0, [orjson.dumps(e) for e in (good, huge, {**good, "side": True}, as_text)])
    events, rejects = batch_events(value)
    assert [e["id"] for e in events] == ["g", "s"] and events[1]["price"] == 100_000.0
    assert [r.reason for _, r in rejects] == ["notional_usd_implausible", "side_invalid"]
    all_good = batch_value(0, [orjson.dumps(good)] * 3)
    assert batch_events(all_good) == ([good] * 3, [])
    for value, reason in [
        (b"{", "batch_invalid_json"),
        (b"[]", "batch_malformed"),
        (b"{}", "batch_malformed"),
    ]:
        with pytest.raises(Rejected) as caught:
            batch_events(value)
        assert caught.value.reason == reason
