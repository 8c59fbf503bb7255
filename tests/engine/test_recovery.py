"""The recovery plan from a table of cases: table contents, committed and end offsets and the
fence history in; buckets to rewrite, catch-up point, where to read breaches back and which
records to suppress out (stream.engine.recovery, the protocol the worker carries out)."""

from __future__ import annotations

from typing import Any

import pytest

from stream.engine.recovery import RecoveryPlan, plan_recovery

CASES: list[Any] = [
    pytest.param(
        dict(active=True, bucket_offsets={}, committed=0, end=0, fence_history=[]),
        dict(
            rewrite=(),
            forget_offsets=False,
            seek_to_start=True,
            catch_up_until=None,
            rules_from=0,
            replay_from={},
            fence={},
            evaluate_at_once=True,
        ),
        id="empty table, empty topic (first start)",
    ),
    pytest.param(
        dict(active=True, bucket_offsets={}, committed=0, end=7, fence_history=[]),
        dict(
            rewrite=(),
            forget_offsets=False,
            seek_to_start=True,
            catch_up_until=7,
            rules_from=0,
            replay_from={},
            fence={},
            evaluate_at_once=False,
        ),
        id="empty table, batches waiting, nothing committed (crash in the first commit interval)",
    ),
    pytest.param(
        dict(
            active=True,
            bucket_offsets={100: 8, 101: 9},
            committed=10,
            end=10,
            fence_history=[(4, {0: 3}), (9, {0: 5})],
        ),
        dict(
            rewrite=(),
            forget_offsets=False,
            seek_to_start=False,
            catch_up_until=None,
            rules_from=10,
            replay_from={0: 5},
            fence={0: 5},
            evaluate_at_once=True,
        ),
        id="clean restart: everything committed and persisted",
    ),
    pytest.param(
        dict(
            active=True,
            bucket_offsets={100: 8, 101: 12},
            committed=10,
            end=14,
            fence_history=[(4, {0: 3}), (9, {0: 5}), (12, {0: 6})],
        ),
        dict(
            rewrite=(101,),
            forget_offsets=False,
            seek_to_start=False,
            catch_up_until=14,
            rules_from=10,
            replay_from={0: 5},
            fence={0: 6},
            evaluate_at_once=False,
        ),
        id="kill -9 mid-batch: a bucket holds an uncommitted batch",
    ),
    pytest.param(
        dict(
            active=True,
            bucket_offsets={100: 10, 101: 7, 102: 11},
            committed=10,
            end=12,
            fence_history=[(9, {0: 2, 1: 4}), (10, {0: 3, 1: 4})],
        ),
        dict(
            rewrite=(100, 102),
            forget_offsets=False,
            seek_to_start=False,
            catch_up_until=12,
            rules_from=10,
            replay_from={0: 2, 1: 4},
            fence={0: 3, 1: 4},
            evaluate_at_once=False,
        ),
        id="redelivered batch partially persisted: only its buckets are written again",
    ),
    pytest.param(
        dict(
            active=True,
            bucket_offsets={100: 20},
            committed=21,
            end=30,
            fence_history=[(5, {0: 1}), (15, {0: 4}), (25, {0: 9})],
        ),
        dict(
            rewrite=(),
            forget_offsets=False,
            seek_to_start=False,
            catch_up_until=30,
            rules_from=21,
            replay_from={0: 4},
            fence={0: 9},
            evaluate_at_once=False,
        ),
        id="fence moved past the committed batch: replay from the entry before it",
    ),
    pytest.param(
        dict(
            active=True,
            bucket_offsets={100: 20},
            committed=3,
            end=30,
            fence_history=[(5, {0: 1}), (15, {0: 4})],
        ),
        dict(
            rewrite=(100,),
            forget_offsets=False,
            seek_to_start=False,
            catch_up_until=30,
            rules_from=3,
            replay_from={},
            fence={0: 4},
            evaluate_at_once=False,
        ),
        id="fence history starts after the committed batch: replay from the beginning",
    ),
    pytest.param(
        dict(
            active=True,
            bucket_offsets={100: 500, 101: 499},
            committed=501,
            end=3,
            fence_history=[(400, {0: 40})],
        ),
        dict(
            rewrite=(100, 101),
            forget_offsets=True,
            seek_to_start=True,
            catch_up_until=3,
            rules_from=501,
            replay_from={0: 40},
            fence={0: 40},
            evaluate_at_once=False,
        ),
        id="batches topic recreated, group kept the old offset: forget offsets, seek to 0",
    ),
    pytest.param(
        dict(active=True, bucket_offsets={100: 500}, committed=2, end=4, fence_history=[]),
        dict(
            rewrite=(100,),
            forget_offsets=True,
            seek_to_start=False,
            catch_up_until=4,
            rules_from=501,
            replay_from={},
            fence={},
            evaluate_at_once=False,
        ),
        id="batches topic recreated and already consumed from: keep the new offset",
    ),
    pytest.param(
        dict(active=False, bucket_offsets={100: 5}, committed=0, end=0, fence_history=[]),
        dict(
            rewrite=(),
            forget_offsets=False,
            seek_to_start=False,
            catch_up_until=0,
            rules_from=0,
            replay_from={},
            fence={},
            evaluate_at_once=False,
        ),
        id="standby: holds no state, plans nothing",
    ),
]


@pytest.mark.parametrize(("given", "expected"), CASES)
def test_plan(given: dict[str, Any], expected: dict[str, Any]) -> None:
    plan = plan_recovery(**given)
    got = {name: getattr(plan, name) for name in expected}
    assert got == expected


def _record(rule: str, event_id: str | None, state: str = "breach") -> dict[str, Any]:
    return {"rule": rule, "exchange": None, "coin": "BTC", "state": state, "event_id": event_id}


REPLAYS: list[Any] = [
    pytest.param([], (), (), -1, id="nothing read back"),
    pytest.param(
        [(1, 4, _record("a", "e1")), (2, 6, _record("b", "e2"))],
        ("a", "b"),
        (),
        -1,
        id="all records of committed batches: states only",
    ),
    pytest.param(
        [(3, 11, _record("b", "e3")), (1, 9, _record("a", "e1")), (2, 10, _record("a", "e2"))],
        ("a", "a", "b"),
        ("e2", "e3"),
        11,
        id="records of batches delivered again are suppressed, applied in publication order",
    ),
    pytest.param(
        [(1, -1, _record("t", None, "recovered")), (2, 12, _record("t", None))],
        ("t", "t"),
        (),
        12,
        id="time-driven records are never suppressed (not produced again)",
    ),
]


@pytest.mark.parametrize(("records", "applied", "suppressed", "redelivered_until"), REPLAYS)
def test_replay(
    records: list[Any],
    applied: tuple[str, ...],
    suppressed: tuple[str, ...],
    redelivered_until: int,
) -> None:
    plan = RecoveryPlan(active=True, rules_from=10)
    replay = plan.replay(records)
    assert tuple(record["rule"] for record in replay.apply) == applied
    assert tuple(record["event_id"] for record in replay.suppress) == suppressed
    assert replay.redelivered_until == redelivered_until
