"""The collector registry is the one list of venues: every other list of exchange ids is
derived from it or checked against it here, so adding a venue is its module, its fixtures
and its registry line (and this test names whatever else was forgotten)."""

from __future__ import annotations

import re
from pathlib import Path

from stream import exchanges, schema
from stream.collectors.registry import FEEDS, VENUES
from stream.demo.session import FEED_WEIGHTS
from stream.node_sources import hyperliquid

DOCS = Path(__file__).resolve().parent.parent / "docs"


def registry_exchange_ids() -> list[str]:
    """The ids from the registry alone: each venue module's feeds name their exchange."""
    return list(dict.fromkeys(feed.exchange for feed in FEEDS.values()))


def test_registry_alone_lists_the_collector_exchanges() -> None:
    ids = registry_exchange_ids()
    assert ids == list(VENUES)
    assert tuple(ids) == exchanges.COLLECTOR_EXCHANGES


def test_node_sources_are_the_other_exchanges() -> None:
    assert exchanges.NODE_EXCHANGES == (hyperliquid.EXCHANGE,)
    assert not set(exchanges.NODE_EXCHANGES) & set(VENUES)


def test_schema_accepts_exactly_the_known_exchanges() -> None:
    assert {*registry_exchange_ids(), hyperliquid.EXCHANGE} == schema.EXCHANGES


def test_demo_weighs_every_feed_of_the_registry() -> None:
    assert set(FEED_WEIGHTS) == set(FEEDS)


def test_event_docs_list_every_collector_exchange() -> None:
    text = (DOCS / "events.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `exchange` |"))
    listed = set(re.findall(r"`([a-z0-9]+)`", row.split("|")[3]))
    assert set(registry_exchange_ids()) <= listed, set(registry_exchange_ids()) - listed
