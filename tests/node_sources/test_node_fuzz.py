"""Poison lines for the Hyperliquid node parser: the fuzzer's mutations of the documented line
shapes (both layouts) never raise, and every reject carries its reason."""

from __future__ import annotations

import random
from pathlib import Path

from stream.collectors.instruments import InstrumentBook
from stream.node_sources.service import node_feed
from tests.collectors.fuzzing import Tally, as_text, check_normalize, check_parse, mutate

FIXTURES = Path(__file__).parents[1] / "collectors" / "fixtures" / "hyperliquid_node"


def test_mutated_lines_never_escape() -> None:
    feed = node_feed(Path("node_fills"))
    book = InstrumentBook(feed, url="")
    seeds = [
        line
        for name in ("node_fills.jsonl", "node_fills_by_block.jsonl")
        for line in (FIXTURES / name).read_text().splitlines()
    ]
    rng = random.Random(13)
    tally = Tally()
    batch: list[bytes] = []
    for _ in range(600):
        data = mutate(rng.choice(seeds), rng)
        check_parse(feed, book, as_text(data), tally)
        batch.append(data.replace(b"\n", b" "))
        if len(batch) == 50:
            check_normalize(feed, book, batch, tally)
            batch = []
    assert tally.tracebacks == [], tally.tracebacks[:3]
    assert tally.lost == [], tally.lost[:3]
    assert tally.events and tally.rejects  # the mutations reached both outcomes
