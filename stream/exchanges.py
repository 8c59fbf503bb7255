"""Every exchange id an event may carry, in one place that imports nothing.

The schema validates `exchange` against these on the hot path and must stay pure, so it
cannot import the collectors (they import the schema). `tests/test_exchanges.py` keeps this
list equal to the collector registry (`stream.collectors.registry.VENUES`) plus the node
sources, so a venue added to the registry and forgotten here fails the suite, naming it.
"""

from __future__ import annotations

# One per module under stream/collectors/, in the registry's order.
COLLECTOR_EXCHANGES: tuple[str, ...] = (
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
# Read from a node's files instead of a websocket (stream/node_sources/).
NODE_EXCHANGES: tuple[str, ...] = ("hyperliquid",)

EXCHANGES: frozenset[str] = frozenset(COLLECTOR_EXCHANGES + NODE_EXCHANGES)
