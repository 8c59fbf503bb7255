"""`liqstream detect` and `liqstream rules check` as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
from click.testing import CliRunner

from bench.synthetic import synthetic_events
from stream.cli import main
from stream.config import load_settings
from stream.rules import load_rules
from tests.rules.reference import brute_force_detect
from tests.test_report_cli import poison_stdin

EXAMPLES = Path(__file__).parents[2] / "examples" / "rules.yaml"


def test_detect_on_synthetic_events_equals_brute_force(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(
        "rules:\n"
        "  - {name: market-5m, metric: total_usd, window: 5m, above: 200000, hysteresis: 0.1}\n"
        '  - {name: coin-1h, metric: count, window: 1h, scope: {coin: "*"}, above: 8}\n'
        "  - {name: whale, metric: single_usd, above: 250000, cooldown: 30m}\n"
        "  - {name: longs, metric: long_share, window: 15m, above: 0.7}\n"
    )
    events = [
        e.to_dict()
        for e in synthetic_events(600, start_ms=1_762_290_000_000, span_ms=6 * 3_600_000, seed=7)
    ]
    stdin = "".join(orjson.dumps(e).decode() + "\n" for e in events) + "not json\n"
    result = CliRunner().invoke(main, ["detect", "--rules", str(rules_file)], input=stdin)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line]
    got = [orjson.loads(line) for line in lines]
    settings = load_settings()
    rules = load_rules(rules_file, settings.windows_ms, settings.resolution_ms)
    want = brute_force_detect(
        events, list(rules.rules), settings.windows_ms, settings.resolution_ms
    )
    assert got == want
    assert {r["rule"] for r in got} == {"market-5m", "coin-1h", "whale", "longs"}
    assert '"reason":"invalid_json"' in result.stderr or "line" in result.stderr


def test_detect_refuses_an_invalid_rules_file(tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - {name: x, metric: count, window: 5m, abve: 3}\n")
    result = CliRunner().invoke(main, ["detect", "--rules", str(rules_file)], input="")
    assert result.exit_code == 1
    assert "rules.yaml:2: rule 'x': unknown field 'abve'" in result.output


def test_rules_check_lists_the_rules() -> None:
    result = CliRunner().invoke(main, ["rules", "check", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert "4 rules OK" in result.output
    assert "any-coin-5m-over-10m: total_usd over 5m above 1e+07 [coin=*]" in result.output


def test_detect_never_dies_on_poison(tmp_path: Path) -> None:
    """A real process with strict UTF-8 stdio: poison lines are rejects with their reasons
    and the rules see every valid event (one record each for a rule every event fires)."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("rules:\n  - {name: any, metric: single_usd, above: 0.000001}\n")
    stdin, events, reasons = poison_stdin()
    result = subprocess.run(
        [sys.executable, "-m", "stream", "detect", "--rules", str(rules_file)],
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    rejects = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == list(enumerate(reasons, start=3))
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(events)
