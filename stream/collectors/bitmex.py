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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import add_sized_event, load_frame, lookup, reject
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.symbols import canonical_coin


def subscribe(symbols: Sequence[str]) -> list[str]:
    return []  # `?subscribe=liquidation` in the URL


def fake_reply(text: str) -> list[str]:
    return ["pong"] if text == "ping" else []


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    parsed = Parsed()
    if text == "pong":
        return parsed
    frame = load_frame(text, parsed)
    if frame is None:
        return parsed
    if not isinstance(frame, dict):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    if "error" in frame:
        reject(parsed, "venue_error", frame)
        return parsed
    if frame.get("table") != "liquidation":
        return parsed  # welcome message, subscription answer
    if frame.get("action") not in ("insert", "partial"):
        return parsed  # update/delete: the order was counted when it appeared
    data = frame.get("data")
    if not isinstance(data, list):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    for row in data:
        _parse_row(row, instruments, received_ts, parsed)
    return parsed


def _parse_row(row: Any, instruments: Instruments, received_ts: int, parsed: Parsed) -> None:
    side = (
        {"Sell": "long", "Buy": "short"}.get(str(row.get("side")))
        if isinstance(row, dict)
        else None
    )
    if side is None or not isinstance(row.get("symbol"), str):
        reject(parsed, "unexpected_shape", row)
        return
    instrument = lookup(instruments, row["symbol"], parsed, row)
    if instrument is None:
        return
    try:
        contracts, price = float(row["leavesQty"]), float(row["price"])
    except (KeyError, TypeError, ValueError):
        reject(parsed, "invalid_number", row)
        return
    add_sized_event(
        parsed,
        row,
        exchange="bitmex",
        instrument=instrument,
        side=side,
        size=contracts,
        quoted_price=price,
        ts=received_ts,
        received_ts=received_ts,
        event_id=row.get("orderID"),
    )


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    if instrument.contract_type == "inverse":
        contracts = max(1, round(coins * price / instrument.contract_size))
    else:
        contracts = max(1, round(coins / instrument.contract_size))
    row = {
        "orderID": f"00000000-0000-0000-0000-{seq:012d}",
        "symbol": instrument.symbol,
        "side": "Sell" if side == "long" else "Buy",
        "price": price,
        "leavesQty": contracts,
    }
    return orjson.dumps({"table": "liquidation", "action": "insert", "data": [row]}).decode()


def instruments_from_rest(payload: Any) -> dict[str, Instrument]:
    """/api/v1/instrument/active: [{"symbol", "underlying", "quoteCurrency", "isInverse",
    "isQuanto", "underlyingToPositionMultiplier", "multiplier"}]; quanto contracts are left
    out (their USD value depends on a second currency's rate)."""
    instruments = {}
    for row in payload:
        if row.get("isQuanto"):
            continue
        coin, _ = canonical_coin(row["underlying"])
        if row.get("isInverse"):
            instruments[row["symbol"]] = Instrument(row["symbol"], coin, "USD", "inverse", 1.0)
        elif row.get("underlyingToPositionMultiplier"):
            size = 1 / float(row["underlyingToPositionMultiplier"])
            instruments[row["symbol"]] = Instrument(
                row["symbol"], coin, row["quoteCurrency"], "linear", size
            )
    return instruments


FEEDS = (
    Feed(
        name="bitmex",
        exchange="bitmex",
        url="wss://ws.bitmex.com/realtime?subscribe=liquidation",
        subscribe=subscribe,
        parse=parse,
        ping_text="ping",
        ping_interval_s=20.0,
        idle_timeout_s=60.0,
        fake_reply=fake_reply,
        instruments_url="https://www.bitmex.com/api/v1/instrument/active",
        instruments_from_rest=instruments_from_rest,
        render=render,
        notes="every liquidation order; BitMEX gives no time, so the receive time is used",
    ),
)
