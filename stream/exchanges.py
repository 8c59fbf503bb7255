"""Every exchange id an event may carry, derived without importing any venue code.

The schema validates `exchange` against these on the hot path and cannot import the venue
modules (they import the schema), so the collector ids come from the registry's list of names
(`stream.collectors.registry.VENUE_IDS`), which imports nothing until its feeds are asked for.
"""

from __future__ import annotations

from stream.collectors.registry import VENUE_IDS

# One per module under stream/collectors/, in the registry's order.
COLLECTOR_EXCHANGES: tuple[str, ...] = VENUE_IDS
# Read from a node's files instead of a websocket (stream/node_sources/).
NODE_EXCHANGES: tuple[str, ...] = ("hyperliquid",)

EXCHANGES: frozenset[str] = frozenset(COLLECTOR_EXCHANGES + NODE_EXCHANGES)
