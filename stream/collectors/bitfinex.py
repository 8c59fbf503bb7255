"""Bitfinex: the `status` channel with key `liq:global`, every liquidated position on the venue.

Rows are `["pos", POS_ID, TIME_MS, null, SYMBOL, AMOUNT, BASE_PRICE, null, IS_MATCH,
IS_MARKET_SOLD, null, PRICE_ACQUIRED]` (docs.bitfinex.com "ws-public-status" and
"rest-public-liquidations"). AMOUNT is the position in coins, positive for a long.
BASE_PRICE is the position's *entry* price ("the price at which user entered the position").

Which row and which price (**unconfirmed** in exchanges.md), decided:
- IS_MATCH is "0: initial liquidation trigger, 1: market execution". A position yields one
  trigger row and then one or more execution rows, so only the trigger row is counted: once
  per position, with the full position size, and POS_ID is then a natural id (tardis-node
  counts the same row).
- The price is PRICE_ACQUIRED (index 11), documented as "price at which the liquidation was
  triggered" / "the price at which the position has been acquired". Not BASE_PRICE: that is
  the entry price (tardis-node uses it; it misstates the liquidation price).
The feed covers perpetuals (`tBTCF0:USTF0`) and margin positions (`tBTCUSD`); both are sized
in coins. Pairs quoted in neither USD nor USDt (`UST`) have no USD value here and are rejected.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import load_frame, parse_items, reject
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent, make_event
from stream.symbols import canonical_coin

EXCHANGE = "bitfinex"
KEY = "liq:global"
FAKE_CHANNEL_ID = 91684  # the docs' example; the real server assigns one per connection
_QUOTES = {"USD": "USD", "UST": "USDT"}  # Bitfinex calls USDt "UST"
_TRIGGER = 0  # IS_MATCH: 0 initial liquidation trigger, 1 market execution
_ROW_LENGTH = 12


def subscribe(symbols: Sequence[str]) -> list[str]:
    message = {"event": "subscribe", "channel": "status", "key": KEY}
    return [orjson.dumps(message).decode()]


def fake_reply(text: str) -> list[str]:
    """What Bitfinex answers: `subscribed` with a channel id; `pong` for a client ping."""
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(message, dict):
        return []
    if message.get("event") == "subscribe":
        reply = {"event": "subscribed", "channel": "status", "chanId": FAKE_CHANNEL_ID, "key": KEY}
    elif message.get("event") == "ping":
        reply = {"event": "pong", "ts": time.time_ns() // 1_000_000, "cid": message.get("cid")}
    else:
        return []
    return [orjson.dumps(reply).decode()]


def instrument_from_symbol(symbol: str) -> Instrument | None:
    """`tBTCF0:USTF0` -> BTC/USDT, `tETHUSD` -> ETH/USD; None for a non-USD quote."""
    pair = symbol[1:] if symbol.startswith("t") else symbol
    base, quote = pair.split(":", 1) if ":" in pair else (pair[:-3], pair[-3:])
    canonical_quote = _QUOTES.get(quote.removesuffix("F0"))
    base = base.removesuffix("F0")
    if not base or canonical_quote is None:
        return None
    coin, units = canonical_coin(base)
    return Instrument(symbol, coin, canonical_quote, "linear", 1.0, units)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _event(row: list[Any], instruments: Instruments, received_ts: int) -> LiquidationEvent:
    symbol = row[4]
    instrument = instruments.get(symbol) or instrument_from_symbol(symbol)
    if instrument is None:
        raise Rejected("quote_not_usd", f"symbol={symbol!r}")
    amount = _number(row[5])
    price = row[11]
    return make_event(
        exchange=EXCHANGE,
        symbol=symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type="linear",
        side="long" if amount > 0 else "short",
        price=_number(price) / instrument.units if price is not None else None,
        quantity=abs(amount) * instrument.units,
        notional_usd=abs(amount) * _number(price) if price is not None else None,
        ts=row[2],
        received_ts=received_ts,
        id=str(row[1]),
    )


def _rows(frame: list[Any]) -> list[Any] | None:
    """`[chanId, [[row], ...]]` (snapshot or update), or one bare row `[chanId, [row]]`."""
    if len(frame) != 2 or not isinstance(frame[1], list):
        return None
    payload = frame[1]
    return [payload] if payload and payload[0] == "pos" else payload


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """Sample frame:
    [91684,[["pos",145400868,1609144352338,null,"tBTCF0:USTF0",-1.88113008,27113,null,0,1,
     null,27180]]]
    """
    parsed = Parsed()
    frame = load_frame(text, parsed)
    if frame is None:
        return parsed
    if isinstance(frame, dict):  # info, subscribed, pong; an error event is dead-lettered
        if frame.get("event") == "error":
            reject(parsed, "venue_error", frame)
        return parsed
    if isinstance(frame, list) and len(frame) == 2 and frame[1] == "hb":
        return parsed
    rows = _rows(frame) if isinstance(frame, list) else None
    if rows is None:
        reject(parsed, "unexpected_shape", frame)
        return parsed

    def liquidation(row: Any) -> LiquidationEvent | None:
        if not isinstance(row, list) or len(row) < _ROW_LENGTH or row[0] != "pos":
            raise ValueError("not a position row")
        if row[8] != _TRIGGER:
            return None  # an execution of a position already counted by its trigger row
        return _event(row, instruments, received_ts)

    return parse_items(parsed, rows, liquidation)


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    amount = coins / instrument.units
    wire_price = price * instrument.units
    row = [
        "pos",
        seq,
        ts_ms,
        None,
        instrument.symbol,
        amount if side == "long" else -amount,
        wire_price,  # BASE_PRICE (entry); not read
        None,
        _TRIGGER,
        1,
        None,
        wire_price,
    ]
    return orjson.dumps([FAKE_CHANNEL_ID, [row]]).decode()


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /v2/conf/pub:list:pair:futures`: [["BTCF0:USTF0","ETHF0:USTF0", ...]]."""
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], list):
        raise ValueError(f"unexpected pair list: {str(payload)[:200]}")
    instruments = {}
    for pair in payload[0]:
        instrument = instrument_from_symbol(f"t{pair}")
        if instrument is not None:
            instruments[instrument.symbol] = instrument
    return instruments


FEEDS: tuple[Feed, ...] = (
    Feed(
        name="bitfinex",
        exchange=EXCHANGE,
        url="wss://api-pub.bitfinex.com/ws/2",
        subscribe=subscribe,
        parse=parse,
        idle_timeout_s=60.0,  # the server sends `[chanId,"hb"]` every 15 s
        fake_reply=fake_reply,
        instruments_url="https://api-pub.bitfinex.com/v2/conf/pub:list:pair:futures",
        instruments_from_rest=instruments_from_rest,
        render=render,
        notes=(
            "one event per liquidated position (its trigger row), at the liquidation price;"
            " covers perpetuals and margin positions quoted in USD or USDt"
        ),
    ),
)
