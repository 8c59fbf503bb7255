"""The collector registry is the one list of venues: every other list of exchange ids is
derived from it, so adding a venue is its module, its fixtures and its registry line (and this
test names whatever else was forgotten)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stream import exchanges, schema
from stream.collectors import registry
from stream.demo import session
from stream.demo.session import FEED_WEIGHTS
from stream.node_sources import hyperliquid

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_schema_accepts_exactly_the_registry_ids_and_the_node_sources() -> None:
    """The ids from the registry's list alone (no venue module imported) and the node sources
    are what the schema accepts, no more and no fewer."""
    assert {*registry.VENUE_IDS, hyperliquid.EXCHANGE} == schema.EXCHANGES
    for exchange in (*registry.VENUE_IDS, hyperliquid.EXCHANGE):
        event = schema.make_event(
            exchange=exchange,
            symbol="BTCUSDT",
            coin="BTC",
            quote="USDT",
            contract_type="linear",
            side="long",
            price=100.0,
            quantity=1.0,
            notional_usd=100.0,
            ts=1_762_290_000_000,
            received_ts=1_762_290_000_100,
        )
        assert event.exchange == exchange


def test_each_registry_id_is_a_venue_module_whose_feeds_carry_it() -> None:
    assert list(registry.VENUES) == list(registry.VENUE_IDS)
    for venue_id, module in registry.VENUES.items():
        assert module.__name__ == f"stream.collectors.{venue_id}"
        assert module.FEEDS and {feed.exchange for feed in module.FEEDS} == {venue_id}
    assert exchanges.COLLECTOR_EXCHANGES == registry.VENUE_IDS


def test_the_schema_reads_the_ids_without_importing_any_venue_module() -> None:
    code = (
        "import sys, stream.schema; "
        "print(sorted(m for m in sys.modules if m.startswith('stream.collectors.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "['stream.collectors.registry']"


def test_node_sources_are_the_other_exchanges() -> None:
    assert exchanges.NODE_EXCHANGES == (hyperliquid.EXCHANGE,)
    assert not set(exchanges.NODE_EXCHANGES) & set(registry.VENUE_IDS)


def test_demo_weights_name_only_registered_feeds() -> None:
    """A weight of a feed that no longer exists is a leftover."""
    assert set(FEED_WEIGHTS) <= set(registry.FEEDS)


def test_a_feed_without_a_demo_weight_still_takes_part_in_the_demo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Adding a venue is its module, fixtures and a registry line: the demo gives a feed it has
    no weight for the default one, and the quiet market keeps it alive."""
    unweighted = {name: w for name, w in FEED_WEIGHTS.items() if name != "poloniex"}
    caches = (session.feed_weights, session.background, session.cascade)
    for cached in caches:
        cached.cache_clear()
    monkeypatch.setattr(session, "FEED_WEIGHTS", unweighted)
    try:
        assert session.feed_weights()["poloniex"] == session.DEFAULT_FEED_WEIGHT
        assert set(session.feed_weights()) == set(registry.FEEDS)
        assert any(order.feed == "poloniex" for order in session.background())
    finally:
        monkeypatch.undo()
        for cached in caches:
            cached.cache_clear()


def test_event_docs_list_every_collector_exchange() -> None:
    text = (DOCS / "events.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `exchange` |"))
    listed = set(re.findall(r"`([a-z0-9]+)`", row.split("|")[3]))
    assert set(registry.VENUE_IDS) <= listed, set(registry.VENUE_IDS) - listed


def test_only_the_shells_that_need_venue_facts_import_the_registry() -> None:
    """The worker, the engine and the rules know exchanges only as ids on events: the registry
    is read by the CLI, the schema's id list, the view's coverage notes and the demo."""
    package = Path(__file__).resolve().parent.parent / "stream"
    importers = set()
    for path in package.rglob("*.py"):
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        if module.startswith("stream.collectors") or module.startswith("stream.simulators"):
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            imported = [n for n in names if n.startswith("stream.collectors")]
            if isinstance(node, ast.ImportFrom) and node.module == "stream.collectors":
                imported += [f"stream.collectors.{alias.name}" for alias in node.names]
            if "stream.collectors.registry" in imported:
                importers.add(module)
    assert importers == {
        "stream.cli",
        "stream.exchanges",
        "stream.view.server",
        "stream.demo.session",
    }
