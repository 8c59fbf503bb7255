"""`liqstream report`: the worker's engine offline, equal to the brute force on random data."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.synthetic import synthetic_events
from stream.cli import main
from stream.commands import report_lines
from stream.config import load_settings
from tests.worker.reference import brute_force_totals

WINDOWS = {
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "12h": 43_200_000,
    "24h": 86_400_000,
}


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=120),
    span_ms=st.integers(min_value=1, max_value=2 * 86_400_000),
    at_offset=st.one_of(st.none(), st.integers(min_value=-3_600_000, max_value=3_600_000)),
    seed=st.integers(min_value=0, max_value=10_000),
    repeated=st.integers(min_value=0, max_value=5),
)
def test_report_equals_brute_force(
    count: int, span_ms: int, at_offset: int | None, seed: int, repeated: int
) -> None:
    start = 1_762_290_000_000
    events = [
        e.to_dict() for e in synthetic_events(count, start_ms=start, span_ms=span_ms, seed=seed)
    ]
    lines = [orjson.dumps(e).decode() + "\n" for e in events]
    lines += lines[:repeated]  # delivered twice: counted once, as by the worker
    latest = max((e["ts"] for e in events), default=0)
    at = None if at_offset is None or not events else latest + at_offset
    out, err = io.StringIO(), io.StringIO()
    report = report_lines(lines, out, err, load_settings(), at)
    assert orjson.loads(out.getvalue()) == report
    as_of = at if at is not None else latest
    assert report["as_of"] == as_of
    kept = [
        e
        for e in events
        if e["ts"] // 60_000 > as_of // 60_000 - 1440 and e["ts"] <= as_of + 300_000
    ]
    expected = brute_force_totals(kept, as_of, WINDOWS, 60_000)
    got = {(r["exchange"], r["coin"], r["window"]): r for r in report["totals"] if r["count"]}
    assert set(got) == set(expected)
    for key, want in expected.items():
        assert got[key]["long_usd"] == pytest.approx(want["long_usd"], rel=1e-12, abs=1e-4)
        assert got[key]["short_count"] == want["short_count"]
        assert got[key]["largest"]["id"] == want["largest_id"]
    rejected = [orjson.loads(line) for line in err.getvalue().splitlines()]
    duplicates = [r for r in rejected if r["reason"] == "duplicate"]
    assert len(duplicates) == min(repeated, len(events))
    assert len(rejected) - len(duplicates) == len(events) - len(kept)


def test_report_command_reads_stdin_and_names_bad_lines() -> None:
    events = [e.to_dict() for e in synthetic_events(3, start_ms=1_762_290_000_000, span_ms=1000)]
    stdin = "\n".join([orjson.dumps(e).decode() for e in events] + ["{oops", '{"id": 1}'])
    result = CliRunner().invoke(main, ["report"], input=stdin)
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["as_of"] == max(e["ts"] for e in events)
    all_24h = next(
        r
        for r in report["totals"]
        if r["exchange"] is None and r["coin"] is None and r["window"] == "24h"
    )
    assert all_24h["count"] == 3
    assert all_24h["total_usd"] == pytest.approx(sum(e["notional_usd"] for e in events), abs=1e-5)
    stderr_lines = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [(r["line"], r["reason"]) for r in stderr_lines] == [
        (4, "invalid_json"),
        (5, "field_missing"),
    ]


def poison_stdin() -> tuple[bytes, list[dict], list[str]]:
    """Four valid events with the poison of issue 15 between them: (stdin, the valid events,
    the reasons expected on stderr in line order)."""
    events = [
        e.to_dict() for e in synthetic_events(4, start_ms=1_762_290_000_000, span_ms=1000, seed=5)
    ]
    model = events[0]
    huge = 1.7976931348623157e308
    poison = [
        (
            orjson.dumps({**model, "id": "p1", "notional_usd": huge, "quantity": huge / 2}),
            "notional_usd_implausible",
        ),
        (orjson.dumps({**model, "id": "p2", "price": True}), "price_not_a_number"),
        (orjson.dumps({**model, "id": "p3", "exchange": ["binance"]}), "unknown_exchange"),
        (b"\xff\xfe{", "invalid_json"),  # not UTF-8
        (b"\x1c\x1d", "invalid_json"),  # control characters are no blank line
        (orjson.dumps({**model, "id": "p4", "notional_usd": "1e308"}), "notional_usd_implausible"),
    ]
    lines = [orjson.dumps(e) for e in events[:2]] + [p for p, _ in poison]
    lines += [orjson.dumps(e) for e in events[2:]]
    return b"\n".join(lines) + b"\n", events, [reason for _, reason in poison]


def test_report_never_dies_on_poison() -> None:
    """A real process with strict UTF-8 stdio: every poison line is a reject with its reason,
    every valid event counts."""
    stdin, events, reasons = poison_stdin()
    result = subprocess.run(
        [sys.executable, "-m", "stream", "report"],
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    rejects = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == list(enumerate(reasons, start=3))
    (all_24h,) = [
        r
        for r in orjson.loads(result.stdout)["totals"]
        if r["exchange"] is None and r["coin"] is None and r["window"] == "24h"
    ]
    assert all_24h["count"] == 4
    assert all_24h["total_usd"] == pytest.approx(sum(e["notional_usd"] for e in events), abs=1e-5)
