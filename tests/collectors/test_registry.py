"""Every venue module is registered, and every feed declares what the shells need."""

from __future__ import annotations

import pkgutil

import pytest

import stream.collectors as collectors
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.registry import FEEDS, VENUES, resolve_feeds
from stream.schema import EXCHANGES

SHELL_MODULES = {
    "connection",
    "dedup",
    "instruments",
    "metrics",
    "parsing",
    "pipeline",
    "publisher",
    "registry",
    "subscriptions",
    "service",
    "venue",
}


def test_every_venue_module_is_registered() -> None:
    modules = {m.name for m in pkgutil.iter_modules(collectors.__path__)} - SHELL_MODULES
    assert modules == set(VENUES)


def test_venue_ids_are_schema_exchanges() -> None:
    assert set(VENUES) <= EXCHANGES
    for name, venue in VENUES.items():
        assert venue.FEEDS, name
        assert all(feed.exchange == name for feed in venue.FEEDS)


@pytest.mark.parametrize("feed_name", sorted(FEEDS))
def test_feed_is_complete(feed_name: str) -> None:
    feed = FEEDS[feed_name]
    assert feed.url.startswith("wss://")
    assert feed.render is not None, "the fake exchange and the demo need render()"
    if feed.needs_symbols:
        assert bundled_snapshot(feed.name), "a per-symbol feed needs a bundled symbol list"
        assert feed.subscribe(sorted(bundled_snapshot(feed.name)))


def test_resolve_feeds() -> None:
    assert resolve_feeds([]) == list(FEEDS.values())
    assert [f.exchange for f in resolve_feeds(["binance"])] == ["binance"] * len(
        VENUES["binance"].FEEDS
    )
    with pytest.raises(KeyError, match="unknown exchange or feed 'nasdaq'"):
        resolve_feeds(["nasdaq"])
