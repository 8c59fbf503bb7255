"""`liqstream normalize-node` and `collect-node` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import orjson
from click.testing import CliRunner

from stream.cli import main

FIXTURES = Path(__file__).parents[1] / "collectors" / "fixtures" / "hyperliquid_node"


def test_normalize_node_turns_a_fills_file_into_events() -> None:
    lines = (FIXTURES / "node_fills.jsonl").read_bytes() + b"not json\n"
    result = CliRunner().invoke(
        main, ["normalize-node", "--received-ts", "1753606213000"], input=lines
    )
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    # the liquidated users' fills of BTC, kPEPE and xyz:NVDA; the counterparty's side and the
    # ordinary fill are not events
    assert [(e["symbol"], e["side"], e["notional_usd"]) for e in events] == [
        ("BTC", "long", 48_500.0),
        ("kPEPE", "short", 1_500.0),
        ("xyz:NVDA", "long", 630.6999999999999),
    ]
    (reject,) = [orjson.loads(line) for line in result.stderr.splitlines()]
    assert (reject["source"], reject["line"], reject["reason"]) == (
        "hyperliquid-node",
        6,
        "invalid_json",
    )


def test_collect_node_help_names_the_fills_directory() -> None:
    result = CliRunner().invoke(main, ["collect-node", "--help"])
    assert result.exit_code == 0
    assert "--fills-dir" in result.output and "~/hl/data/node_fills" in result.output
    assert "--from-beginning" in result.output
