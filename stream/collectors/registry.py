"""The venues liqstream collects from: `VENUE_IDS` is the one list of exchange ids.

Each id names a module `stream/collectors/<id>.py` that declares `FEEDS` (and a simulator
`stream/simulators/<id>.py` for the fake exchange). Adding an exchange is that module, its
fixtures and one line below; docs/adding-a-venue.md is the checklist. Everything else derives
from this list: `stream.exchanges` (and so the schema's validation of `exchange`) reads the ids
without importing any venue code, and `FEEDS`/`VENUES` import the venue modules on first use,
so that the schema can read this file although the venue modules import the schema.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stream.collectors.venue import Feed

VENUE_IDS: tuple[str, ...] = (
    "binance",
    "bybit",
    "okx",
    "bitmex",
    "deribit",
    "htx",
    "gate",
    "bitfinex",
    "bitget",
    "kraken",
    "dydx",
    "aster",
    "lighter",
    "poloniex",
    "zoomex",
)

if TYPE_CHECKING:  # built by `__getattr__` on first use
    VENUES: dict[str, ModuleType]
    FEEDS: dict[str, Feed]


def venues() -> dict[str, ModuleType]:
    """Each venue id to its imported module, in `VENUE_IDS` order."""
    loaded = globals().get("VENUES")
    if loaded is None:
        loaded = {name: importlib.import_module(f"stream.collectors.{name}") for name in VENUE_IDS}
        globals()["VENUES"] = loaded
    return loaded


def feeds() -> dict[str, Feed]:
    """Every feed of every venue by its name (`binance-usdm`), in `VENUE_IDS` order."""
    loaded = globals().get("FEEDS")
    if loaded is None:
        loaded = {feed.name: feed for module in venues().values() for feed in module.FEEDS}
        globals()["FEEDS"] = loaded
    return loaded


def __getattr__(name: str) -> object:
    """`FEEDS` and `VENUES` as module attributes, imported when first asked for."""
    if name == "FEEDS":
        return feeds()
    if name == "VENUES":
        return venues()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_feeds(names: list[str] | tuple[str, ...]) -> list[Feed]:
    """Exchange ids (all their feeds) or feed names; every feed when `names` is empty."""
    by_name, by_venue = feeds(), venues()
    if not names:
        return list(by_name.values())
    chosen_feeds: list[Feed] = []
    for name in names:
        if name in by_name:
            chosen = [by_name[name]]
        elif name in by_venue:
            chosen = list(by_venue[name].FEEDS)
        else:
            known = ", ".join(sorted({*by_venue, *by_name}))
            raise KeyError(f"unknown exchange or feed {name!r}; known: {known}")
        chosen_feeds.extend(feed for feed in chosen if feed not in chosen_feeds)
    return chosen_feeds
