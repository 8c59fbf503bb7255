"""Bitget: the public `liquidation` topic of the UTA (v3) websocket, per product type.

Checked: the classic v2 public websocket (`wss://ws.bitget.com/v2/ws/public`, `instType`
`USDT-FUTURES`) documents no liquidation channel; the UTA (v3) public websocket does, covering
both Unified and Classic accounts (bitget.com api-doc "uta/websocket/public/Liquidation-Channel";
tardis-node reads the same topic since its 2026-04 Bitget V3 switch). Subscribe
`{"op":"subscribe","args":[{"instType":"usdt-futures","topic":"liquidation"}]}`; the types are
`usdt-futures`, `usdc-futures` and `coin-futures`. "Data is pushed once per second ... only the
record with the highest liquidation quantity for long and short positions respectively per
trading pair": at most two records per pair and second, so totals are a lower bound.

Units and side:
- `amount` is the liquidated value in the **quote currency** (USDT, USDC; USD for coin-futures),
  not coins. A live frame (tardis-node's tests, 2026-04-28): APEUSDT price 0.1649, amount
  13.70319 = 83.1 APE, a whole 0.1 lot; the documented BTCUSDT example (price 89000, amount
  37.722858) is 0.000424 BTC. Tucsky/aggr's Bitget adapter reads it so ("liquidation amount
  unit is quote coin"). So USD = amount and coins = amount / price. Coin-futures (BTCUSD) are
  quoted in USD and their sizes are USD values too (aggr reads coin-futures trade sizes as
  quote value), so the same rule holds there: USD = amount, coins = amount / price.
- `side` is the position side (`buy` = a long liquidated): the channel reports liquidations
  "for long and short positions respectively", and tardis-node and aggr read it so.
No id is given: events get the deterministic hash id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import (
    amounts,
    choose,
    load_object,
    parse_items,
    reject,
    sized_event,
)
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

EXCHANGE = "bitget"
TOPIC = "liquidation"
# instType -> (contract type, quote)
PRODUCT_TYPES = {
    "usdt-futures": ("linear", "USDT"),
    "usdc-futures": ("linear", "USDC"),
    "coin-futures": ("inverse", "USD"),
}
_SYMBOL = re.compile(r"^(?P<base>[A-Z0-9]+?)(?P<quote>USDT|USDC|PERP|USD)(?:_?[A-Z0-9]*)$")
_POSITION_SIDE = {"buy": "long", "sell": "short"}  # already the position's side


def subscribe(symbols: Sequence[str]) -> list[str]:
    args = [{"instType": inst_type, "topic": TOPIC} for inst_type in PRODUCT_TYPES]
    return [orjson.dumps({"op": "subscribe", "args": args}).decode()]


def instrument_from_symbol(symbol: str, inst_type: str) -> Instrument:
    """`BTCUSDT` + usdt-futures -> BTC/USDT linear; `BTCUSD` + coin-futures -> inverse."""
    contract_type, quote = PRODUCT_TYPES[inst_type]
    match = _SYMBOL.match(symbol)
    if match is None:
        raise Rejected("unrecognised_symbol", f"symbol={symbol!r} ({inst_type})")
    coin, units = canonical_coin(match["base"])
    return Instrument(symbol, coin, quote, contract_type, 1.0, units)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _ts(value: Any) -> Any:
    """Bitget sends ms as a string; make_event validates the result."""
    return int(value) if isinstance(value, str) and value.isdigit() else value


def _event(
    item: dict[str, Any], inst_type: str, instruments: Instruments, received_ts: int
) -> LiquidationEvent:
    symbol = item["symbol"]
    instrument = instruments.get(symbol) or instrument_from_symbol(symbol, inst_type)
    wire_price = _number(item["price"])
    amount_quote = _number(item["amount"])  # quote currency (USDT, USDC or USD), not coins
    value = amounts(instrument, None, wire_price, notional_usd=amount_quote)
    return sized_event(
        exchange=EXCHANGE,
        instrument=instrument,
        side=_POSITION_SIDE.get(str(item.get("side")), ""),
        value=value,
        ts=_ts(item.get("ts")),
        received_ts=received_ts,
    )


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """Sample frame:
    {"data":[{"symbol":"BTCUSDT","side":"buy","price":"89000","amount":"37.722858",
     "ts":"1736371332162"}],"arg":{"instType":"usdt-futures","topic":"liquidation"},
     "action":"update","ts":1736371332162}
    """
    parsed = Parsed()
    if text == "pong":
        return parsed
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if "event" in frame:  # subscribe acks; errors are dead-lettered
        if frame["event"] == "error" or frame.get("code") not in (None, 0, "0"):
            reject(parsed, "venue_error", frame)
        return parsed
    arg = frame.get("arg")
    data = frame.get("data")
    if (
        not isinstance(arg, dict)
        or arg.get("topic") != TOPIC
        or choose(PRODUCT_TYPES, arg.get("instType")) is None
        or not isinstance(data, list)
    ):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    return parse_items(
        parsed, data, lambda item: _event(item, arg["instType"], instruments, received_ts)
    )


FEEDS: tuple[Feed, ...] = (
    Feed(
        name="bitget",
        exchange=EXCHANGE,
        url="wss://ws.bitget.com/v3/ws/public",
        subscribe=subscribe,
        parse=parse,
        # Bitget docs (websocket intro): send "ping" every 30 s, no ping for 2 min closes the
        # connection, and every connection is cut after 24 h.
        ping_text="ping",
        ping_interval_s=30.0,
        max_connection_age_s=23.5 * 3600,
        idle_timeout_s=90.0,  # every ping is answered with "pong"
        lower_bound=True,
        notes=(
            "per pair and second only the largest long and the largest short liquidation are"
            " published: totals are a lower bound; amount is quote currency (USD value),"
            " side the position side"
        ),
    ),
)
