"""Poloniex perpetual futures (API v3): the public `liquidation_orders` channel.

Source: Poloniex API docs, "Futures Websocket API" (api-docs.poloniex.com/v3/futures/websocket)
and its public channel "Liquidation Orders". The v3 futures endpoint is
`wss://ws.poloniex.com/ws/v3/public` (`/ws/public` is the spot one). Subscribe per symbol:
    {"event":"subscribe","channel":["liquidation_orders"],"symbols":["BTC_USDT_PERP"]}
answered by {"event":"subscribe","channel":"liquidation_orders","symbols":[...]}; pushes:
    {"channel":"liquidation_orders","data":[{"s":"BTC_USDT_PERP","side":"BUY",
     "posSide":"BOTH","sz":"1","bkPx":"94120.8368032","uTime":1739367328421,
     "ts":1739367328446}]}

- `posSide` is the liquidated position (LONG, SHORT); BOTH (one-way mode) leaves it to the
  liquidation order's `side`: SELL closes a long, BUY a short. A LONG liquidated by a BUY is
  contradictory and rejected.
- `sz` counts contracts of `ctVal` coins (BTC_USDT_PERP: 0.001 BTC), from
  `GET https://api.poloniex.com/v3/market/allInstruments` (one answer, every symbol); `bkPx`
  is the bankruptcy price, `uTime` the liquidation's completion time.
- Completeness: "one order pushed per second for the same trading pair": a lower bound.
- Connection rules: the server ends a session that sent no message or ping for 30 s (the
  client sends `{"event":"ping"}`, answered `{"event":"pong"}`; the server never pings); 500
  requests per second per connection, 2000 connections per IP; no per-connection cap on
  subscriptions is documented.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import (
    amounts,
    choose,
    load_object,
    lookup,
    number,
    parse_items,
    reject,
    reply_object,
    sized_event,
)
from stream.collectors.venue import (
    Feed,
    Instrument,
    Instruments,
    Parsed,
    PerSymbol,
    SubscribeReply,
    SubscriptionLimits,
)
from stream.errors import Rejected
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

EXCHANGE = "poloniex"
CHANNEL = "liquidation_orders"
SYMBOLS_PER_MESSAGE = 10  # Poloniex states no maximum; a small batch keeps a refusal small
LIMITS = SubscriptionLimits(
    source=(
        "Poloniex Futures Websocket API (v3): 500 requests per second per connection, 2000"
        " connections per IP, no per-connection subscription cap documented; 10 symbols per"
        " subscribe (no maximum is documented)"
    ),
    topics_per_message=SYMBOLS_PER_MESSAGE,
    connections_per_ip=2000,
)
_POSITION = {"LONG": "long", "SHORT": "short"}
_CLOSED_BY = {"SELL": "long", "BUY": "short"}  # the liquidation order's side closes this
PING = orjson.dumps({"event": "ping"}).decode()


def topic(symbol: str) -> str:
    return symbol  # the channel is fixed; a subscription is one symbol


def request(op: str, topics: Sequence[str], req_id: str) -> str:
    return orjson.dumps({"event": op, "channel": [CHANNEL], "symbols": list(topics)}).decode()


def subscribe(symbols: Sequence[str]) -> list[str]:
    ordered = sorted(set(symbols))
    return [
        request("subscribe", ordered[start : start + SYMBOLS_PER_MESSAGE], "")
        for start in range(0, len(ordered), SYMBOLS_PER_MESSAGE)
    ]


def read_reply(text: str) -> SubscribeReply | None:
    """`subscribe`/`unsubscribe` answers name their symbols; an `error` names none."""
    message = reply_object(text, '"event"')
    if message is None:
        return None
    event = message.get("event")
    if event in ("subscribe", "unsubscribe") and message.get("channel") == CHANNEL:
        symbols = message.get("symbols")
        named = tuple(s for s in symbols if isinstance(s, str)) if isinstance(symbols, list) else ()
        return SubscribeReply(op=event, topics=named)
    if event == "error":
        return SubscribeReply(ok=False, reason=str(message.get("message") or "refused"))
    return None


def _side(item: dict[str, Any]) -> str | None:
    """The liquidated position: `posSide`, or for BOTH the side the order closes."""
    closed = choose(_CLOSED_BY, item.get("side"))
    position = item.get("posSide")
    if position == "BOTH":
        return closed
    side = choose(_POSITION, position)
    return side if side == closed else None


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if "event" in frame:  # subscribe answers (read by the connection), pongs, errors
        if frame.get("event") == "error":
            reject(parsed, "venue_error", frame)
        return parsed
    if frame.get("channel") != CHANNEL or not isinstance(frame.get("data"), list):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    return parse_items(
        parsed, frame["data"], lambda item: _liquidation(item, instruments, received_ts, parsed)
    )


def _liquidation(
    item: Any, instruments: Instruments, received_ts: int, parsed: Parsed
) -> LiquidationEvent | None:
    if not isinstance(item, dict):
        raise Rejected("unexpected_shape", "not an object")
    side = _side(item)
    if side is None:
        raise Rejected("unexpected_shape", "side and posSide name no position")
    try:
        contracts = number(item.get("sz"))
        price = number(item.get("bkPx"))
    except (TypeError, ValueError):
        raise Rejected("invalid_number", "sz or bkPx") from None
    instrument = lookup(instruments, item.get("s"), parsed, item)
    if instrument is None:
        return None
    return sized_event(
        exchange=EXCHANGE,
        instrument=instrument,
        side=side,
        value=amounts(instrument, contracts, price),
        ts=item.get("uTime", received_ts),
        received_ts=received_ts,
    )


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /v3/market/allInstruments`: {"code":200,"data":[{"symbol":"BTC_USDT_PERP",
    "bCcy":"BTC","qCcy":"USDT","ctVal":"0.001","ctType":"LINEAR","status":"OPEN",...}]};
    open (or paused) symbols only, since this list is also what is subscribed."""
    if not isinstance(payload, dict) or payload.get("code") != 200:
        raise ValueError(f"unexpected allInstruments answer: {str(payload)[:200]}")
    rows = payload.get("data")
    if not isinstance(rows, list):
        raise ValueError(f"unexpected allInstruments answer: {str(payload)[:200]}")
    instruments = {}
    for row in rows:
        if row.get("status") not in ("OPEN", "PAUSED", "CANCEL_ONLY"):
            continue
        coin, units = canonical_coin(row["bCcy"])
        inverse = row.get("ctType") == "INVERSE"
        instruments[row["symbol"]] = Instrument(
            row["symbol"],
            coin,
            "USD" if inverse else row["qCcy"],
            "inverse" if inverse else "linear",
            float(row["ctVal"]),
            1 if inverse else units,
        )
    return instruments


PER_SYMBOL = PerSymbol(limits=LIMITS, topic=topic, request=request, read_reply=read_reply)

FEEDS: tuple[Feed, ...] = (
    Feed(
        name="poloniex",
        exchange=EXCHANGE,
        url="wss://ws.poloniex.com/ws/v3/public",
        subscribe=subscribe,
        parse=parse,
        needs_symbols=True,
        ping_text=PING,
        ping_interval_s=20.0,  # the server ends a session silent for 30 s
        idle_timeout_s=120.0,  # pongs arrive every 20 s
        instruments_url="https://api.poloniex.com/v3/market/allInstruments",
        instruments_from_rest=instruments_from_rest,
        per_symbol=PER_SYMBOL,
        lower_bound=True,
        notes="at most one liquidation per symbol per second is pushed: totals are a lower bound",
    ),
)
