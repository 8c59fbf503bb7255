"""The aggregation agent's last line of defence, without Kafka: a batch that fails half-way
through `apply_batch` (validated events never do; a bug might) counts not at all, is
dead-lettered whole with the error, and the agent goes on to the next batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.synthetic import synthetic_events
from stream.config import load_settings
from stream.worker.agents import now_ms
from stream.worker.batcher import batch_value
from stream.worker.service import build_worker


class Batches:
    """What Faust hands the agent: batch records with their offsets."""

    def __init__(self, *values: bytes) -> None:
        self.values = values

    async def events(self) -> AsyncIterator[Any]:
        for offset, value in enumerate(self.values):
            yield SimpleNamespace(value=value, message=SimpleNamespace(offset=offset))


async def test_a_batch_that_fails_half_way_counts_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(table_store="memory", data_dir=tmp_path)
    _, agents = build_worker(settings)
    dead: list[tuple[str, dict]] = []

    async def dead_letter(reason: str, payload: str, **context: Any) -> None:
        dead.append((reason, context))

    monkeypatch.setattr(agents, "_dead_letter", dead_letter)
    aggregation = agents.aggregation
    real_apply = aggregation.apply_batch
    applied: list[int] = []

    def apply_then_fail(events: list[dict], offset: int, *args: Any) -> Any:
        if offset == 0:  # the first batch: some events are in the buckets when it fails
            real_apply(events[:3], offset, *args)
            raise ArithmeticError("a bug")
        applied.append(offset)
        return {}, []

    monkeypatch.setattr(aggregation, "apply_batch", apply_then_fail)
    events = synthetic_events(10, start_ms=now_ms() - 60_000, span_ms=50_000, seed=2)
    value = batch_value(0, [e.to_json() for e in events])

    await agents._aggregate(Batches(value, value))  # type: ignore[arg-type]

    assert aggregation.buckets == {}  # as the table holds it: nothing of batch 0
    assert aggregation.sums == {}
    assert dead == [
        ("batch_failed_ArithmeticError", {"offset": 0, "detail": "ArithmeticError('a bug')"})
    ]
    assert applied == [1]  # the agent went on
    assert agents.health.ok
