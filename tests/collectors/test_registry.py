"""Every venue module is registered, and every feed declares what the shells need."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import stream.collectors as collectors
import stream.simulators as simulators
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.registry import FEEDS, VENUES, resolve_feeds
from stream.schema import EXCHANGES
from stream.simulators import simulator_for
from stream.simulators.base import Simulator

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
    if feed.needs_symbols:
        assert bundled_snapshot(feed.name), "a per-symbol feed needs a bundled symbol list"
        assert feed.subscribe(sorted(bundled_snapshot(feed.name)))


def test_every_venue_has_a_simulator_module_with_one_simulator_per_feed() -> None:
    """`stream/simulators/<id>.py` beside `stream/collectors/<id>.py`: the fake exchange and
    the demo find a feed's server side by its venue id."""
    modules = {m.name for m in pkgutil.iter_modules(simulators.__path__)} - {"base"}
    assert modules == set(VENUES)
    for name, venue in VENUES.items():
        module = importlib.import_module(f"stream.simulators.{name}")
        assert set(module.SIMULATORS) == {feed.name for feed in venue.FEEDS}, name
        for feed in venue.FEEDS:
            assert isinstance(simulator_for(feed), Simulator)


def test_the_collectors_never_import_simulator_code() -> None:
    """The client side of a venue stands alone: loading every feed (and the collector shells)
    imports nothing of `stream.simulators` or the fake servers."""
    code = (
        "import sys; from stream.collectors import registry, service; registry.FEEDS; "
        "print(sorted(m for m in sys.modules if m.startswith(('stream.simulators', "
        "'stream.fake_'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for path in Path(collectors.__file__).parent.glob("*.py"):
        imports = re.findall(r"^\s*(?:from|import) (stream\.\S+)", path.read_text(), re.M)
        assert not [name for name in imports if name.startswith("stream.simulators")], path.name


# Bitfinex pairs a position's rows across frames (`pair_rows`) before any event exists.
ITEMS_ACROSS_FRAMES = {"bitfinex"}


def test_every_venue_reads_its_items_one_way() -> None:
    """One parser style: each item of a frame goes through `parsing.parse_items` to an event,
    None, or a `Rejected` naming why; no venue appends events to `Parsed` by hand."""
    for name, venue in VENUES.items():
        if name in ITEMS_ACROSS_FRAMES:
            continue
        text = Path(venue.__file__).read_text()
        assert "add_sized_event" not in text and ".events.append" not in text, name
        # a venue speaking another's protocol (Aster: Binance's) reuses that venue's parser
        reuses = re.search(r"^from stream\.collectors import \w+$", text, re.M)
        assert "parse_items" in text or reuses, f"{name} does not read items with parse_items"


def test_resolve_feeds() -> None:
    assert resolve_feeds([]) == list(FEEDS.values())
    assert [f.exchange for f in resolve_feeds(["binance"])] == ["binance"] * len(
        VENUES["binance"].FEEDS
    )
    with pytest.raises(KeyError, match="unknown exchange or feed 'nasdaq'"):
        resolve_feeds(["nasdaq"])
