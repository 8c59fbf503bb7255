"""The venues liqstream collects from: one module per exchange, listed here by hand.

Adding an exchange is more than a line here; docs/adding-a-venue.md is the checklist. Beside
`stream/collectors/<venue>.py` (with its `FEEDS`, fixtures and tests) and its import and
`VENUES` entry below, its id goes into `COLLECTOR_EXCHANGES` in `stream/exchanges.py` (the
schema validates `exchange` against that without importing the collectors), plus the demo
weights, docs and snapshot that document names. `tests/collectors/test_registry.py` fails on
a module not listed here, and `tests/test_exchanges.py` until `stream/exchanges.py` agrees.
"""

from __future__ import annotations

from types import ModuleType

from stream.collectors import (
    aster,
    binance,
    bitfinex,
    bitget,
    bitmex,
    bybit,
    deribit,
    dydx,
    gate,
    htx,
    kraken,
    lighter,
    okx,
    poloniex,
    zoomex,
)
from stream.collectors.venue import Feed

VENUES: dict[str, ModuleType] = {
    "binance": binance,
    "bybit": bybit,
    "okx": okx,
    "bitmex": bitmex,
    "deribit": deribit,
    "htx": htx,
    "gate": gate,
    "bitfinex": bitfinex,
    "bitget": bitget,
    "kraken": kraken,
    "dydx": dydx,
    "aster": aster,
    "lighter": lighter,
    "poloniex": poloniex,
    "zoomex": zoomex,
}

FEEDS: dict[str, Feed] = {feed.name: feed for venue in VENUES.values() for feed in venue.FEEDS}


def resolve_feeds(names: list[str] | tuple[str, ...]) -> list[Feed]:
    """Exchange ids (all their feeds) or feed names; every feed when `names` is empty."""
    if not names:
        return list(FEEDS.values())
    feeds: list[Feed] = []
    for name in names:
        if name in FEEDS:
            chosen = [FEEDS[name]]
        elif name in VENUES:
            chosen = list(VENUES[name].FEEDS)
        else:
            known = ", ".join(sorted({*VENUES, *FEEDS}))
            raise KeyError(f"unknown exchange or feed {name!r}; known: {known}")
        feeds.extend(feed for feed in chosen if feed not in feeds)
    return feeds
