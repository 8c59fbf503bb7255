"""BitMEX: the `liquidation` table (every liquidation order, all symbols).

Documented frame:
    {"table":"liquidation","action":"insert","data":[{"orderID":"98ae1dad-6a3b-51c4-14bd-
     e076919e9e30","symbol":"XBTUSD","side":"Buy","price":13854.5,"leavesQty":314930}]}

- Rows are orders: `insert` announces one (with its full size in `leavesQty`), `update`
  shrinks `leavesQty` as it fills, `delete` removes it. An order counts once, when it first
  appears: in an `insert`, or in the `partial` snapshot sent on subscribing (orders already
  in flight; after a reconnect the same orderIDs are dropped as duplicates downstream).
- `side` is the order side: Buy closes a short.
- `leavesQty` is contracts: XBTUSD and other inverse contracts are 1 USD each; linear
  contracts hold 1/underlyingToPositionMultiplier coins (XBTUSDT: 0.000001 XBT).
- No timestamp: the receive time is used. XBT means BTC.

Quanto contracts (`isQuanto`: ETHUSD and others) are priced in USD but settled in XBT: one
contract is worth `multiplier` satoshis (XBt) per USD of price (ETHUSD: 100, i.e. 0.000001 XBT
per $1; BitMEX contract guide and `/api/v1/instrument`). So USD = contracts x multiplier x
1e-8 x price x XBTUSD, and coins = USD / price. The XBT/USD rate comes from BitMEX's own XBT
index `.BXBT` (`instrument:.BXBT` in the same subscription; its `partial` arrives on
connecting, then each new `lastPrice`). The rate is state between frames, so the shell keeps one
`XbtUsdRate` parser per pipeline (`Feed.stateful_parse`); a quanto liquidation before any rate
is dead-lettered as `xbt_usd_rate_unknown`. A quanto instrument is kept as
`Instrument(quote="XBT", contract_size=multiplier x 1e-8)`: XBT per contract per unit of
price. Quantos settled in USDt are plain linear contracts (multiplier x 1e-6 coins each).
Left out, and dead-lettered as `unknown_symbol` if they ever liquidate: linear contracts
quoted in XBT (ETHXBT-style; their price is in XBT) and any other settlement currency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from stream.collectors.parsing import (
    amounts,
    load_object,
    lookup,
    number,
    parse_items,
    reject,
    sized_event,
)
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

RATE_SYMBOL = ".BXBT"  # BitMEX's XBT/USD index
_SATOSHI = 1e-8  # XBt per XBT
_USDT_MINOR = 1e-6  # USDt per USDT
_USD_QUOTES = ("USD", "USDT", "USDC")


def subscribe(symbols: Sequence[str]) -> list[str]:
    return []  # `?subscribe=liquidation,instrument:.BXBT` in the URL


def read(
    text: str, instruments: Instruments, received_ts: int, xbt_usd: float | None
) -> tuple[Parsed, float | None]:
    """One frame with the XBT/USD rate known so far -> its events, and the rate after it."""
    parsed = Parsed()
    if text == "pong":
        return parsed, xbt_usd
    frame = load_object(text, parsed)
    if frame is None:
        return parsed, xbt_usd
    if "error" in frame:
        reject(parsed, "venue_error", frame)
        return parsed, xbt_usd
    if frame.get("table") == "instrument":
        return parsed, _rate(frame, parsed, xbt_usd)
    if frame.get("table") != "liquidation":
        if not {"table", "info", "success", "subscribe"} & frame.keys():
            reject(parsed, "unexpected_shape", frame)  # not a message BitMEX documents
        return parsed, xbt_usd  # welcome message, subscription answer, another table
    if frame.get("action") not in ("insert", "partial"):
        return parsed, xbt_usd  # update/delete: the order was counted when it appeared
    data = frame.get("data")
    if not isinstance(data, list):
        reject(parsed, "unexpected_shape", frame)
        return parsed, xbt_usd
    parse_items(
        parsed, data, lambda row: _row_event(row, instruments, received_ts, xbt_usd, parsed)
    )
    return parsed, xbt_usd


def _rate(frame: dict[str, Any], parsed: Parsed, xbt_usd: float | None) -> float | None:
    """The `.BXBT` index's latest `lastPrice` in an instrument frame (updates carry only the
    fields that changed)."""
    data = frame.get("data")
    if not isinstance(data, list):
        reject(parsed, "unexpected_shape", frame)
        return xbt_usd
    for row in data:
        if not isinstance(row, dict) or row.get("symbol") != RATE_SYMBOL or "lastPrice" not in row:
            continue
        price = row["lastPrice"]
        if (
            isinstance(price, bool)
            or not isinstance(price, int | float)
            or not 0 < price < math.inf
        ):
            reject(parsed, "invalid_number", row)
            continue
        xbt_usd = float(price)
    return xbt_usd


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """One frame on its own (no XBT/USD rate from earlier frames)."""
    return read(text, instruments, received_ts, None)[0]


class XbtUsdRate:
    """The shell's stateful parser: remembers the latest `.BXBT` rate for quanto contracts."""

    def __init__(self) -> None:
        self.xbt_usd: float | None = None

    def __call__(self, text: str, instruments: Instruments, received_ts: int) -> Parsed:
        parsed, self.xbt_usd = read(text, instruments, received_ts, self.xbt_usd)
        return parsed


def _row_event(
    row: Any, instruments: Instruments, received_ts: int, xbt_usd: float | None, parsed: Parsed
) -> LiquidationEvent | None:
    side = (
        {"Sell": "long", "Buy": "short"}.get(str(row.get("side")))
        if isinstance(row, dict)
        else None
    )
    if side is None or not isinstance(row.get("symbol"), str):
        raise Rejected("unexpected_shape", "no side or symbol")
    instrument = lookup(instruments, row["symbol"], parsed, row)
    if instrument is None:
        return None
    try:
        contracts, price = number(row["leavesQty"]), number(row["price"])
    except (KeyError, TypeError, ValueError):
        raise Rejected("invalid_number", "leavesQty or price") from None
    if instrument.quote != "XBT":
        value = amounts(instrument, contracts, price)
    elif xbt_usd is None:
        raise Rejected("xbt_usd_rate_unknown", "no .BXBT rate yet")
    else:  # quanto: USD = contracts x XBT per contract per USD of price x price x XBTUSD
        value = amounts(instrument, contracts, price, settle_usd=xbt_usd)
        instrument = replace(instrument, quote="USD")
    return sized_event(
        exchange="bitmex",
        instrument=instrument,
        side=side,
        value=value,
        ts=received_ts,
        received_ts=received_ts,
        event_id=row.get("orderID"),
    )


def instruments_from_rest(payload: Any) -> dict[str, Instrument]:
    """/api/v1/instrument/active: [{"symbol", "underlying", "quoteCurrency", "isInverse",
    "isQuanto", "multiplier", "settlCurrency", "underlyingToPositionMultiplier"}]. Inverse:
    1 USD per contract; linear: 1/underlyingToPositionMultiplier coins; quanto: see the
    module docstring. Linear contracts not quoted in USD, USDT or USDC are left out."""
    instruments = {}
    for row in payload:
        coin, _ = canonical_coin(row["underlying"])
        symbol = row["symbol"]
        if row.get("isQuanto"):
            multiplier = abs(float(row["multiplier"]))
            if row.get("settlCurrency") == "XBt":
                size = multiplier * _SATOSHI  # XBT per contract per unit of price
                instruments[symbol] = Instrument(symbol, coin, "XBT", "linear", size)
            elif row.get("settlCurrency") == "USDt":
                size = multiplier * _USDT_MINOR  # coins per contract
                instruments[symbol] = Instrument(symbol, coin, "USDT", "linear", size)
        elif row.get("isInverse"):
            instruments[symbol] = Instrument(symbol, coin, "USD", "inverse", 1.0)
        elif row.get("underlyingToPositionMultiplier") and row["quoteCurrency"] in _USD_QUOTES:
            size = 1 / float(row["underlyingToPositionMultiplier"])
            instruments[symbol] = Instrument(symbol, coin, row["quoteCurrency"], "linear", size)
    return instruments


FEEDS = (
    Feed(
        name="bitmex",
        exchange="bitmex",
        url=f"wss://ws.bitmex.com/realtime?subscribe=liquidation,instrument:{RATE_SYMBOL}",
        subscribe=subscribe,
        parse=parse,
        ping_text="ping",
        ping_interval_s=20.0,
        idle_timeout_s=60.0,
        instruments_url="https://www.bitmex.com/api/v1/instrument/active",
        instruments_from_rest=instruments_from_rest,
        notes=(
            "every liquidation order, quanto contracts valued at the .BXBT XBT/USD index;"
            " left out: linear contracts quoted in XBT (ETHXBT-style) and settlement"
            " currencies other than XBt and USDt; BitMEX gives no time, so the receive time"
            " is used"
        ),
        stateful_parse=XbtUsdRate,
    ),
)
