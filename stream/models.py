"""Faust record types of the topics' values, for Faust agents and apps built on liqstream.

The canonical schema and its validation live in `stream.schema`; this mirrors it field for
field (a test keeps the two in step) so that Faust code can declare typed topics.
"""

from __future__ import annotations

import faust


class LiquidationRecord(faust.Record, serializer="json", include_metadata=False):
    """A normalized liquidation event as carried on the `liquidations` topic."""

    id: str
    exchange: str
    symbol: str
    coin: str
    quote: str
    contract_type: str
    side: str
    price: float
    quantity: float
    notional_usd: float
    ts: int
    received_ts: int
