"""Kraken Futures: liquidation trades on the public `trade` feed (ws v1), per product.

The trade feed carries every trade; items with `type: "liquidation"` are liquidations ("a result
of a user being liquidated from their position"). On subscribing, a `trade_snapshot` of recent
trades arrives first: its liquidations are parsed too and the shell drops repeats by `uid`.

Which party died (**unconfirmed** in exchanges.md), decided: the taker. `side` is "the
classification of the taker side in the matched trade" (docs.kraken.com, futures websocket
"Trade"), and Kraken's Equity Protection Process liquidates "by submitting an
Immediate-or-Cancel order to the market" (support.kraken.com article 360022835671): an IOC
order always takes. So `sell` = a long liquidated, `buy` = a short liquidated.

Sizes: `PF_`/`FF_` (multi-collateral, linear) are in coins; `PI_`/`FI_` (inverse) in contracts
of 1 USD. Keep-alive (**unconfirmed**: the docs ask for "a ping request at least every 60
seconds" without a message shape; the sample client uses websocket pings): the websocket
library's protocol pings every 20 s, plus the documented `heartbeat` feed for liveness.

Subscriptions (docs.kraken.com, futures websocket "Subscriptions"): `product_ids` lists the
products of a request; the answer is `subscribed` (or `unsubscribed`) echoing them, a failure
`subscribed_failed` with the product ids or `{"event":"error","message":"Invalid product id"}`
naming none. Kraken documents no limit of products per request or per connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import (
    amounts,
    load_object,
    lookup,
    parse_items,
    reject,
    reply_object,
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
from stream.schema import LiquidationEvent, make_event
from stream.symbols import canonical_coin

EXCHANGE = "kraken"
_POSITION_SIDE = {"sell": "long", "buy": "short"}  # `side` is the taker, the liquidated party
_LINEAR_PREFIXES = ("PF_", "FF_")
_INVERSE_PREFIXES = ("PI_", "FI_")
_QUOTES = ("USDT", "USDC", "USD")  # longest first
PRODUCTS_PER_MESSAGE = 100  # no documented limit; keeps each request small
LIMITS = SubscriptionLimits(
    source=(
        "docs.kraken.com futures websocket: no documented limit of products per request or"
        " connection; 100 products per request is liqstream's choice"
    ),
    topics_per_message=PRODUCTS_PER_MESSAGE,
)
HEARTBEAT = orjson.dumps({"event": "subscribe", "feed": "heartbeat"}).decode()


def subscribe(symbols: Sequence[str]) -> list[str]:
    messages = [HEARTBEAT]
    products = list(symbols)
    for start in range(0, len(products), PRODUCTS_PER_MESSAGE):
        messages.append(request("subscribe", products[start : start + PRODUCTS_PER_MESSAGE], ""))
    return messages


def topic(product_id: str) -> str:
    return product_id


def request(op: str, topics: Sequence[str], req_id: str) -> str:
    return orjson.dumps({"event": op, "feed": "trade", "product_ids": list(topics)}).decode()


def read_reply(text: str) -> SubscribeReply | None:
    """Answers to `trade` subscriptions (the heartbeat feed's are not topics)."""
    message = reply_object(text, '"event"')
    if message is None:
        return None
    event = message.get("event")
    products = message.get("product_ids")
    named = tuple(str(p) for p in products) if isinstance(products, list) else ()
    if event in ("subscribed", "unsubscribed") and message.get("feed") == "trade":
        return SubscribeReply(op=event.removesuffix("d"), topics=named)
    if event == "subscribed_failed" or (event == "error" and message.get("feed") != "heartbeat"):
        reason = str(message.get("message") or event)
        return SubscribeReply(ok=False, topics=named, rejected=named, reason=reason)
    return None


def instrument_from_symbol(symbol: str) -> Instrument | None:
    """`PF_XBTUSD` -> BTC/USD linear; `PI_ETHUSD`, `FI_XBTUSD_220930` -> inverse."""
    if symbol.startswith(_LINEAR_PREFIXES):
        contract_type = "linear"
    elif symbol.startswith(_INVERSE_PREFIXES):
        contract_type = "inverse"
    else:
        return None
    body = symbol.split("_")[1]
    quote = next((q for q in _QUOTES if body.endswith(q) and len(body) > len(q)), None)
    if quote is None:
        return None
    coin, units = canonical_coin(body[: -len(quote)])
    return Instrument(symbol, coin, quote, contract_type, 1.0, units)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _instrument(
    symbol: str, instruments: Instruments, parsed: Parsed, trade: Any
) -> Instrument | None:
    """Linear products fix coins by themselves; inverse ones need the contract size."""
    instrument = instruments.get(symbol)
    if instrument is None and symbol.startswith(_LINEAR_PREFIXES):
        instrument = instrument_from_symbol(symbol)
    return instrument or lookup(instruments, symbol, parsed, trade)


def _event(
    trade: dict[str, Any], instruments: Instruments, received_ts: int, parsed: Parsed
) -> LiquidationEvent | None:
    instrument = _instrument(trade["product_id"], instruments, parsed, trade)
    if instrument is None:
        return None
    value = amounts(instrument, _number(trade["qty"]), _number(trade["price"]))
    return make_event(
        exchange=EXCHANGE,
        symbol=instrument.symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type=instrument.contract_type,
        side=_POSITION_SIDE.get(str(trade.get("side")), ""),
        price=value.price,
        quantity=value.quantity,
        notional_usd=value.notional_usd,
        ts=trade.get("time"),
        received_ts=received_ts,
        id=trade.get("uid"),
    )


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """Sample frame (a delta; a `trade_snapshot` holds such items under `trades`):
    {"feed":"trade","product_id":"PF_XBTUSD","uid":"45ee9737-1877-4682-bc68-e4ef818ef88a",
     "side":"sell","type":"liquidation","seq":655507,"time":1612269656839,"qty":0.25,
     "price":34891}
    """
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    event = frame.get("event")
    if event is not None:  # info, subscribed; errors and failed subscriptions are dead-lettered
        if event in ("error", "subscribed_failed", "alert"):
            reject(parsed, "venue_error", frame)
        return parsed
    feed = frame.get("feed")
    if feed == "trade_snapshot":
        trades = frame.get("trades")
    elif feed == "trade":
        trades = [frame]
    else:
        if "feed" not in frame:
            reject(parsed, "unexpected_shape", frame)  # neither event nor feed message
        return parsed  # heartbeat
    if not isinstance(trades, list):
        reject(parsed, "unexpected_shape", frame)
        return parsed

    def liquidation(trade: Any) -> LiquidationEvent | None:
        if trade.get("type") != "liquidation":
            return None  # an ordinary fill, a termination or a block trade
        return _event(trade, instruments, received_ts, parsed)

    return parse_items(parsed, trades, liquidation)


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /derivatives/api/v3/instruments`: {"result":"success","instruments":[{"symbol":
    "PF_XBTUSD","type":"flexible_futures","base":"XBT","quote":"USD","contractSize":1,
    "tradeable":true, ...}]}. Tradeable futures only: this list is also what is subscribed."""
    if not isinstance(payload, dict) or payload.get("result") != "success":
        raise ValueError(f"unexpected instruments answer: {str(payload)[:200]}")
    instruments = {}
    for row in payload["instruments"]:
        derived = instrument_from_symbol(str(row.get("symbol")))
        if derived is None or not row.get("tradeable", False):
            continue
        instruments[derived.symbol] = Instrument(
            derived.symbol,
            derived.coin,
            derived.quote,
            derived.contract_type,
            float(row.get("contractSize", 1)),
            derived.units,
        )
    return instruments


PER_SYMBOL = PerSymbol(
    limits=LIMITS, topic=topic, request=request, read_reply=read_reply, preamble=(HEARTBEAT,)
)

FEEDS: tuple[Feed, ...] = (
    Feed(
        name="kraken",
        exchange=EXCHANGE,
        url="wss://futures.kraken.com/ws/v1",
        subscribe=subscribe,
        parse=parse,
        needs_symbols=True,
        idle_timeout_s=120.0,  # the heartbeat feed and the trade tape keep it busy
        instruments_url="https://futures.kraken.com/derivatives/api/v3/instruments",
        instruments_from_rest=instruments_from_rest,
        per_symbol=PER_SYMBOL,
        notes=(
            "full trade tape of the subscribed products; the liquidated party is taken to be"
            " the taker (Kraken liquidates with IOC orders)"
        ),
    ),
)
