"""The rules file: what is accepted, and a message naming line, rule and field for each mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.engine.rules import EACH, Rule, parse_rules
from stream.errors import ConfigError
from stream.rules import load_rules

WINDOWS_MS = {"5m": 300_000, "1h": 3_600_000, "24h": 86_400_000}
RESOLUTION_MS = 60_000
EXAMPLES = Path(__file__).parents[2] / "examples" / "rules.yaml"


def parse(text: str):
    return parse_rules(text, WINDOWS_MS, RESOLUTION_MS, source="rules.yaml")


def test_example_file_is_valid() -> None:
    rules = load_rules(EXAMPLES, WINDOWS_MS, RESOLUTION_MS)
    assert [r.name for r in rules.rules] == [
        "market-24h-over-1b",
        "btc-1h-over-100m",
        "any-coin-5m-over-10m",
        "whale-liquidation",
    ]
    first = rules.rules[0]
    assert first == Rule(
        name="market-24h-over-1b",
        metric="total_usd",
        window="24h",
        exchange=None,
        coin=None,
        direction="above",
        threshold=1e9,
        hysteresis=0.05,
        cooldown_ms=600_000,
    )
    assert rules.rules[2].coin == EACH
    assert rules.rules[3].window is None


def test_scope_values_are_normalized_and_other_windows_allowed() -> None:
    rules = parse(
        "rules:\n"
        "  - {name: a, metric: long_share, window: 30m, scope: {exchange: OKX, coin: xbt},"
        " below: 0.2}\n"
        '  - {name: b, metric: count, window: 5m, scope: {exchange: "*"}, above: 3}\n'
    )
    a, b = rules.rules
    assert (a.exchange, a.coin, a.direction, a.threshold) == ("okx", "BTC", "below", 0.2)
    assert (b.exchange, b.coin) == (EACH, None)
    assert rules.windows_ms == {"30m": 1_800_000, "5m": 300_000}


@pytest.mark.parametrize("text", ["", "rules:\n", "rules: []\n"])
def test_empty_files_mean_no_rules(text: str) -> None:
    assert parse(text).rules == ()


GOOD = "  - name: r\n    metric: total_usd\n    window: 1h\n    above: 100\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: {a: 1}\n", "rules.yaml:1: rules: must be a list of rules"),
        ("- 1\n", "rules.yaml:1: file: must be a mapping"),
        ("rule:\n" + GOOD, "rules.yaml:1: file: unknown top-level key 'rule'"),
        (
            "rules:\n  - name: r\n    metric: total\n    window: 1h\n    above: 1\n",
            "rules.yaml:3: rule 'r': field 'metric': 'total'; one of",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    above: 1\n",
            "rule 'r': field 'window': required",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    window: 90s\n    above: 1\n",
            "rules.yaml:4: rule 'r': field 'window': 90s is not a multiple of the resolution",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    window: 2d\n    above: 1\n",
            "rules.yaml:4: rule 'r': field 'window': 2d is longer than the longest",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    window: soon\n    above: 1\n",
            "rules.yaml:4: rule 'r': field 'window': 'soon' is not a duration",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    window: 1h\n",
            "rule 'r': field 'above': give exactly one of `above` or `below`",
        ),
        (
            "rules:\n" + GOOD + "    below: 2\n",
            "rules.yaml:6: rule 'r': field 'below': give exactly one",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    window: 1h\n    above: lots\n",
            "rules.yaml:5: rule 'r': field 'above': must be a number, 0 or more",
        ),
        (
            "rules:\n  - name: r\n    metric: total_usd\n    window: 1h\n    above: -1\n",
            "rules.yaml:5: rule 'r': field 'above': must be a number",
        ),
        (
            "rules:\n  - name: r\n    metric: long_share\n    window: 1h\n    above: 80\n",
            "rules.yaml:5: rule 'r': field 'above': long_share is a fraction between 0 and 1",
        ),
        (
            "rules:\n  - name: r\n    metric: single_usd\n    below: 80\n",
            "rules.yaml:4: rule 'r': field 'below': single_usd fires on one event above",
        ),
        (
            "rules:\n  - name: r\n    metric: single_usd\n    window: 1h\n    above: 80\n",
            "rules.yaml:4: rule 'r': field 'window': single_usd fires per event and has no window",
        ),
        (
            "rules:\n" + GOOD + "    hysteresis: 1.5\n",
            "rules.yaml:6: rule 'r': field 'hysteresis': must be a fraction",
        ),
        (
            "rules:\n" + GOOD + "    cooldown: a while\n",
            "rules.yaml:6: rule 'r': field 'cooldown': 'a while' is not a duration",
        ),
        (
            "rules:\n" + GOOD + "    scope: {exchange: binanse}\n",
            "rules.yaml:6: rule 'r': field 'scope.exchange': unknown exchange 'binanse'",
        ),
        (
            "rules:\n" + GOOD + "    scope: {symbol: BTCUSDT}\n",
            "rules.yaml:6: rule 'r': field 'scope.symbol': unknown; use exchange or coin",
        ),
        (
            "rules:\n" + GOOD + "    scope: BTC\n",
            "rules.yaml:6: rule 'r': field 'scope': a mapping like {coin: BTC}",
        ),
        (
            "rules:\n" + GOOD + "    above: 200\n",
            "rules.yaml:6: rule 'r': field 'above' given twice (first at line 5)",
        ),
        (
            "rules:\n  - name: r\n    metric: long_share\n    window: 1h\n    above: 1\n",
            "rules.yaml:5: rule 'r': field 'above': long_share is never above 1",
        ),
        (
            "rules:\n  - name: r\n    metric: long_share\n    window: 1h\n    below: 0.8\n"
            "    hysteresis: 0.5\n",
            "rules.yaml:6: rule 'r': field 'hysteresis': recovery at 1.2 is above 1, never met",
        ),
        (
            "rules:\n  - name: r\n    metric: [total_usd]\n    window: 1h\n    above: 1\n",
            "rules.yaml:3: rule 'r': field 'metric': a list; one of",
        ),
        (
            "rules:\n" + GOOD + "    severity: high\n",
            "rules.yaml:6: rule 'r': unknown field 'severity'",
        ),
        (
            "rules:\n  - metric: count\n    window: 1h\n    above: 3\n",
            "rules.yaml:2: rules[0]: field 'name': required",
        ),
        (
            "rules:\n" + GOOD + GOOD,
            "rules.yaml:6: rule 'r': field 'name': duplicate of the rule at line 2",
        ),
        ("rules:\n  - name: [\n", "rules.yaml:3: not valid YAML"),
    ],
)
def test_each_mistake_names_line_rule_and_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(text)
    assert message in str(error.value)


def test_all_mistakes_are_reported_at_once() -> None:
    text = (
        "rules:\n"
        "  - {name: a, metric: nope, window: 1h, above: 1}\n"
        "  - {name: b, metric: count, window: 1h, above: 1, cooldown: x}\n"
    )
    with pytest.raises(ConfigError) as error:
        parse(text)
    lines = str(error.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("rules.yaml:2: rule 'a': field 'metric'")
    assert lines[1].startswith("rules.yaml:3: rule 'b': field 'cooldown'")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules file"):
        load_rules(tmp_path / "missing.yaml", WINDOWS_MS, RESOLUTION_MS)


@pytest.mark.parametrize("zero", ["0", "0.0", "0s", "0m", "00ms"])
def test_no_cooldown_can_be_written_with_any_unit(zero: str) -> None:
    (rule,) = parse("rules:\n" + GOOD + f"    cooldown: {zero}\n").rules
    assert rule.cooldown_ms == 0
