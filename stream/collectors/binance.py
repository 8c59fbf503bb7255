"""Binance USD-M and COIN-M futures: the `!forceOrder@arr` stream (all symbols).

Documented frame (USD-M):
    {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",
     "q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014",
     "T":1568014460893}}
COIN-M adds `"ps":"BTCUSD"` and counts `z` in contracts of `contractSize` USD.

- `S` is the side of the forced *order*: SELL closes a long (side "long").
- Size: `z` (accumulated filled), price: `ap` (average fill), falling back to `p` when `ap`
  is 0 (an order not filled yet reports ap 0).
- Completeness: Binance pushes at most one liquidation per symbol per second (the latest in
  that second), so totals from this feed are a lower bound.
- Since 2026 the USD-M stream lives under `/market` on fstream; on the bare host it silently
  delivers nothing. Connections are cut after 24 h: reconnect before.

Symbols and routing. USD-M: perpetuals `BTCUSDT`, `1000PEPEUSDT` and quarterlies
`BTCUSDT_260925`, sized in coins. COIN-M: `BTCUSD_PERP` and quarterlies `BTCUSD_260925`, sized
in contracts of `contractSize` USD. Since Binance merged the USD-M and COIN-M universes
(2026-06-30) `dstream` also pushes USD-M orders, so each order is routed by its symbol, on
either stream, to the rules of its own contract family (`instrument_for`), never by the stream
it came on. An order that arrives on both streams gets the same id on both (a hash of the wire
order: symbol, time, side, size and price as sent, independent of either stream's instrument
list), so de-duplication keeps one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stream.collectors.parsing import (
    amounts,
    choose,
    load_frame,
    lookup,
    number,
    parse_items,
    sized_event,
)
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent, event_id
from stream.symbols import canonical_coin

_LINEAR_QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "USD")
_COINM_SYMBOL = re.compile(r"^(?P<base>[A-Z0-9]+)USD_(?:PERP|\d{6})$")
_DATED_SUFFIX = re.compile(r"_\d{6}$")  # quarterlies: BTCUSDT_260925


def _subscribe(symbols: Sequence[str]) -> list[str]:
    return []  # the stream is named in the URL path


def _linear_instrument(symbol: str) -> Instrument | None:
    """USD-M rules follow from the symbol: quantities are in (possibly 1000x) coins; a
    quarterly's `_YYMMDD` suffix does not change them."""
    pair = _DATED_SUFFIX.sub("", symbol)
    for quote in _LINEAR_QUOTES:
        if pair.endswith(quote) and len(pair) > len(quote):
            coin, units = canonical_coin(pair[: -len(quote)])
            return Instrument(symbol, coin, quote, "linear", 1.0, units)
    return None


def _coinm_instrument(symbol: str) -> Instrument | None:
    match = _COINM_SYMBOL.match(symbol)
    if match is None:
        return None
    # Documented rule when no metadata was fetched: 100 USD per BTC contract, 10 otherwise.
    coin, _ = canonical_coin(match["base"])
    return Instrument(symbol, coin, "USD", "inverse", 100.0 if coin == "BTC" else 10.0)


def instrument_for(symbol: str, instruments: Instruments) -> Instrument | None:
    """The contract rules of `symbol`, whichever stream the order came on: the fetched
    metadata, else COIN-M's `BASEUSD_PERP` / `BASEUSD_YYMMDD`, else USD-M's rule."""
    return instruments.get(symbol) or _coinm_instrument(symbol) or _linear_instrument(symbol)


@dataclass(frozen=True, slots=True)
class ForceOrderVenue:
    """What differs between venues that speak Binance's `forceOrder` protocol (Binance, Aster):
    the exchange id the events carry and how a wire symbol finds its contract rules."""

    exchange: str
    instrument_for: Callable[[str, Instruments], Instrument | None]


BINANCE = ForceOrderVenue("binance", instrument_for)


def parse_force_orders(
    venue: ForceOrderVenue, text: str, instruments: Instruments, received_ts: int
) -> Parsed:
    """A `forceOrder` frame of `venue`: one event, a list of them, or the combined-stream
    wrapper; each order routed by its symbol (`venue.instrument_for`)."""
    parsed = Parsed()
    frame = load_frame(text, parsed)
    if frame is None:
        return parsed
    if isinstance(frame, dict) and "data" in frame and "stream" in frame:
        frame = frame["data"]  # combined-stream wrapper
    if isinstance(frame, dict) and ("result" in frame or "id" in frame) and "e" not in frame:
        return parsed  # subscription answer
    items = frame if isinstance(frame, list) else [frame]
    return parse_items(
        parsed, items, lambda item: _order_event(venue, item, instruments, received_ts, parsed)
    )


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """Either Binance stream's frames (see `parse_force_orders`)."""
    return parse_force_orders(BINANCE, text, instruments, received_ts)


def _order_event(
    venue: ForceOrderVenue, item: Any, instruments: Instruments, received_ts: int, parsed: Parsed
) -> LiquidationEvent | None:
    if (
        not isinstance(item, dict)
        or item.get("e") != "forceOrder"
        or not isinstance(item.get("o"), dict)
    ):
        raise Rejected("unexpected_shape", "not a forceOrder event")
    order = item["o"]
    symbol = order.get("s")
    side = choose({"SELL": "long", "BUY": "short"}, order.get("S"))
    if not isinstance(symbol, str) or side is None:
        raise Rejected("unexpected_shape", "no symbol or side")
    try:
        filled = number(order.get("z") or order.get("q") or "nan")
        price = number(order.get("ap") or 0) or number(order.get("p") or "nan")
    except (TypeError, ValueError):
        raise Rejected("invalid_number", "z/q or ap/p") from None
    instrument = venue.instrument_for(symbol, instruments)
    if instrument is None:
        lookup(instruments, symbol, parsed, item)
        return None
    return sized_event(
        exchange=venue.exchange,
        instrument=instrument,
        side=side,
        value=amounts(instrument, filled, price),
        ts=order.get("T", received_ts),
        received_ts=received_ts,
        # The same on dstream and fstream, whatever each stream's instrument list holds.
        event_id=event_id(venue.exchange, symbol, order.get("T"), side, price, filled),
    )


# Both streams carry orders of both families since the merged universe: one parser.
parse_usdm = parse_coinm = parse


def _coinm_from_rest(payload: Any) -> dict[str, Instrument]:
    """/dapi/v1/exchangeInfo: {"symbols": [{"symbol", "baseAsset", "contractSize", ...}]}."""
    instruments = {}
    for row in payload["symbols"]:
        coin, _ = canonical_coin(row["baseAsset"])
        instruments[row["symbol"]] = Instrument(
            row["symbol"], coin, "USD", "inverse", float(row["contractSize"])
        )
    return instruments


def _usdm_from_rest(payload: Any) -> dict[str, Instrument]:
    """/fapi/v1/exchangeInfo: {"symbols": [{"symbol": "BTCUSDT_260925", "baseAsset": "BTC",
    "quoteAsset": "USDT", "contractType": "CURRENT_QUARTER", ...}]}; quantities are in
    `baseAsset` units (1000PEPE: lots of 1000 PEPE), so one contract is one unit."""
    instruments = {}
    for row in payload["symbols"]:
        coin, units = canonical_coin(row["baseAsset"])
        symbol = row["symbol"]
        instruments[symbol] = Instrument(symbol, coin, row["quoteAsset"], "linear", 1.0, units)
    return instruments


# Binance USD-M's wire format and rules, shared with venues that copy them (Aster).
linear_instrument = _linear_instrument
usdm_instruments_from_rest = _usdm_from_rest

NOTES = "at most one liquidation per symbol per second is published: totals are a lower bound"

FEEDS = (
    Feed(
        name="binance-usdm",
        exchange="binance",
        url="wss://fstream.binance.com/market/ws/!forceOrder@arr",
        subscribe=_subscribe,
        parse=parse_usdm,
        max_connection_age_s=23.5 * 3600,
        idle_timeout_s=900.0,  # quiet markets send nothing; the server pings every 3 min
        instruments_url="https://fapi.binance.com/fapi/v1/exchangeInfo",
        instruments_from_rest=_usdm_from_rest,
        lower_bound=True,
        notes=NOTES,
    ),
    Feed(
        name="binance-coinm",
        exchange="binance",
        url="wss://dstream.binance.com/ws/!forceOrder@arr",
        subscribe=_subscribe,
        parse=parse_coinm,
        max_connection_age_s=23.5 * 3600,
        idle_timeout_s=900.0,
        instruments_url="https://dapi.binance.com/dapi/v1/exchangeInfo",
        instruments_from_rest=_coinm_from_rest,
        lower_bound=True,
        notes=NOTES,
    ),
)
