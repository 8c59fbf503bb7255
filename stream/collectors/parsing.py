"""Small helpers shared by the venue parsers, so that each venue file holds only its rules."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from stream.collectors.venue import UNKNOWN_SYMBOL, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent, make_event

MAX_FRAME_CHARS = 1_000_000  # far above any venue's largest legitimate frame


def load_frame(text: str, parsed: Parsed) -> Any | None:
    """Decode a frame's JSON, or record a reject in `parsed` and return None."""
    if len(text) > MAX_FRAME_CHARS:
        parsed.rejects.append(Rejected("oversized_frame", f"{len(text)} chars: {text[:200]}"))
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        parsed.rejects.append(Rejected("invalid_json", f"{exc}: {text[:1000]}"))
        return None


def item_text(item: Any) -> str:
    """The raw text of one frame item, for the dead-letter record."""
    try:
        return orjson.dumps(item).decode()
    except TypeError:
        return repr(item)


def reject(parsed: Parsed, reason: str, item: Any) -> None:
    parsed.rejects.append(Rejected(reason, item_text(item)))


def parse_items(
    parsed: Parsed, items: Iterable[Any], parse_one: Callable[[Any], LiquidationEvent | None]
) -> Parsed:
    """Each item of a frame to its event, or to a reject naming why: one bad item never spoils
    the rest of its frame. `parse_one` returns None for an item that is not a liquidation (or
    that it rejected itself) and may raise Rejected, or any lookup error of a malformed item."""
    for item in items:
        try:
            event = parse_one(item)
        except Rejected as exc:
            parsed.rejects.append(Rejected(exc.reason, f"{exc.detail} in {item_text(item)}"))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            reject(parsed, "malformed_item", item)
        else:
            if event is not None:
                parsed.events.append(event)
    return parsed


def lookup(instruments: Instruments, symbol: str, parsed: Parsed, item: Any) -> Instrument | None:
    """The instrument for `symbol`, or an `unknown_symbol` reject (the shell refreshes once)."""
    instrument = instruments.get(symbol)
    if instrument is None:
        reject(parsed, UNKNOWN_SYMBOL, item)
    return instrument


def add_sized_event(
    parsed: Parsed,
    item: Any,
    *,
    exchange: str,
    instrument: Instrument,
    side: str,
    size: float,
    quoted_price: float,
    ts: Any,
    received_ts: int,
    event_id: str | None = None,
) -> None:
    """Append the event for `size` venue units at `quoted_price`, or a reject naming why.

    The one place contract rules turn into coins and USD. Inverse: `size` contracts of
    `contract_size` USD each. Linear: `size` contracts of `contract_size` quoted lots, each
    lot `units` coins (1000 for `1000PEPE`), with the price quoted per lot.
    """
    if instrument.contract_type == "inverse":
        notional = size * instrument.contract_size
        price = quoted_price
        quantity = notional / price if price > 0 else math.nan
    else:
        quantity = size * instrument.contract_size * instrument.units
        price = quoted_price / instrument.units
        notional = quantity * price
    try:
        parsed.events.append(
            make_event(
                id=event_id,
                exchange=exchange,
                symbol=instrument.symbol,
                coin=instrument.coin,
                quote=instrument.quote,
                contract_type=instrument.contract_type,
                side=side,
                price=price,
                quantity=quantity,
                notional_usd=notional,
                ts=ts,
                received_ts=received_ts,
            )
        )
    except Rejected as rejected:
        parsed.rejects.append(Rejected(rejected.reason, f"{rejected.detail}: {item_text(item)}"))
