"""dYdX v4: liquidation trades on the Indexer's public `v4_trades` channel, one market each.

The channel carries every trade; `type: "LIQUIDATED"` marks a fill whose taker order was a
liquidation order (`DELEVERAGED` fills are auto-deleveraging of the winning side, not counted).
`side` is the taker's, hence the liquidation order's: `SELL` = a long liquidated. `size` is in
coins, `createdAt` ISO-8601. The `subscribed` answer replays recent trades: they are parsed
too, and the shell drops repeats by trade `id`.

Source: docs.dydx.exchange "Indexer Websocket" (connection, subscribe, heartbeat: the server
sends a websocket ping every 30 s and disconnects without a pong in 10 s, answered by the
websocket library). The Indexer allows 32 subscriptions per channel per connection (its socks
service, `CHANNEL_CONNECTION_LIMITS`; nautilus_trader's dYdX adapter documents the same), so
every market is followed with as many connections as needed. Answers name the market:
`subscribed`/`unsubscribed` with `id`, errors in their `message` ("Invalid subscription id for
channel: (v4_trades-NOPE-USD)"); past the limit the error names none.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from stream.collectors.parsing import (
    amounts,
    load_object,
    parse_items,
    reject,
    reply_object,
    text_field,
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
from stream.schema import LiquidationEvent, make_event
from stream.symbols import canonical_coin

EXCHANGE = "dydx"
CHANNEL = "v4_trades"
MAX_MARKETS = 32  # Indexer limit: subscriptions per channel per connection
LIMITS = SubscriptionLimits(
    source=(
        "dYdX v4 Indexer socks service: 32 subscriptions per channel per connection"
        " (CHANNEL_CONNECTION_LIMITS), one market per subscribe message; its rate limit (2"
        " subscribe attempts per second) is per market and connection, not per message"
    ),
    topics_per_message=1,
    topics_per_connection=MAX_MARKETS,
)
_NAMED_MARKET = re.compile(r"v4_trades(?:-|, id )([A-Za-z0-9.]+-[A-Za-z0-9.]+)")
_POSITION_SIDE = {"SELL": "long", "BUY": "short"}  # the taker is the liquidation order
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def subscribe(symbols: Sequence[str]) -> list[str]:
    """One message per market (the collector spreads markets over connections by `LIMITS`)."""
    return [request("subscribe", [market], "") for market in sorted(set(symbols))]


def topic(market: str) -> str:
    return market


def request(op: str, topics: Sequence[str], req_id: str) -> str:
    (market,) = topics  # one market per message
    return orjson.dumps({"type": op, "channel": CHANNEL, "id": market}).decode()


def read_reply(text: str) -> SubscribeReply | None:
    """`subscribed`/`unsubscribed` name their market; an error names it in its message."""
    message = reply_object(text, '"type"')
    if message is None:
        return None
    kind = message.get("type")
    if kind in ("subscribed", "unsubscribed") and message.get("channel") == CHANNEL:
        market = message.get("id")
        op = kind.removesuffix("d")
        return SubscribeReply(op=op, topics=(str(market),) if market else ())
    if kind != "error":
        return None
    reason = str(message.get("message", "")) or "refused without a reason"
    named = tuple(_NAMED_MARKET.findall(reason))
    if "already subscribed" in reason:  # what was asked for holds
        return SubscribeReply(op="subscribe", topics=named)
    return SubscribeReply(ok=False, topics=named, rejected=named, reason=reason)


def created_at_ms(created_at: Any) -> int:
    """`2026-09-17T13:39:47.542Z` -> ms since the epoch (exact, no float rounding)."""
    try:
        moment = datetime.fromisoformat(created_at)
    except (TypeError, ValueError):
        raise Rejected("ts_invalid", f"createdAt={created_at!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MS


def instrument_from_market(market: str) -> Instrument:
    """`BTC-USD` -> BTC/USD linear (collateral is USDC, counted at par)."""
    base, quote = market.split("-")
    coin, units = canonical_coin(base)
    return Instrument(market, coin, quote, "linear", 1.0, units)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _event(trade: dict[str, Any], instrument: Instrument, received_ts: int) -> LiquidationEvent:
    wire_price = _number(trade["price"])
    value = amounts(instrument, _number(trade["size"]), wire_price, in_contracts=False)
    return make_event(
        exchange=EXCHANGE,
        symbol=instrument.symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type="linear",
        side=_POSITION_SIDE.get(str(trade.get("side")), ""),
        price=value.price,
        quantity=value.quantity,
        notional_usd=value.notional_usd,
        ts=created_at_ms(trade.get("createdAt")),
        received_ts=received_ts,
        id=trade.get("id"),
    )


def _trades(frame: dict[str, Any]) -> list[Any] | None:
    contents = frame.get("contents")
    if frame.get("type") == "channel_batch_data" and isinstance(contents, list):
        batches = [batch.get("trades") if isinstance(batch, dict) else None for batch in contents]
        lists = [trades for trades in batches if isinstance(trades, list)]
        if len(lists) != len(batches):
            return None  # every batch is a list of trades, or the frame is malformed
        return [t for trades in lists for t in trades]
    trades = contents.get("trades") if isinstance(contents, dict) else None
    return trades if isinstance(trades, list) else None


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """Sample frame:
    {"type":"channel_data","connection_id":"3a2e4c0c-7579-4bf6-a570-e0979418bbe9",
     "message_id":15897,"id":"BTC-USD","channel":"v4_trades","version":"2.1.0",
     "contents":{"trades":[{"id":"064e89330000000200000002","side":"SELL","size":"0.0004",
     "price":"75974","type":"LIQUIDATED","createdAt":"2026-09-17T13:39:47.542Z"}]}}
    """
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    kind = frame.get("type")
    if kind == "error":
        reject(parsed, "venue_error", frame)
        return parsed
    if kind not in ("subscribed", "channel_data", "channel_batch_data"):
        if kind is None:
            reject(parsed, "unexpected_shape", frame)  # every Indexer message has a type
        return parsed  # connected, unsubscribed
    try:
        market = frame["id"]
        trades = _trades(frame) if frame.get("channel") == CHANNEL else None
        instrument = instruments.get(market) or instrument_from_market(market)
    except (KeyError, TypeError, ValueError, AttributeError):
        trades = None
    if trades is None:
        reject(parsed, "unexpected_shape", frame)
        return parsed

    def liquidation(trade: Any) -> LiquidationEvent | None:
        if text_field(trade["type"]) != "LIQUIDATED":  # a trade without a type is malformed
            return None  # ordinary fills and deleveraging
        return _event(trade, instrument, received_ts)

    return parse_items(parsed, trades, liquidation)


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /v4/perpetualMarkets`: {"markets":{"BTC-USD":{"ticker":"BTC-USD",
    "status":"ACTIVE", ...}}}. Active markets only: this list is also what is subscribed."""
    if not isinstance(payload, dict) or not isinstance(payload.get("markets"), dict):
        raise ValueError(f"unexpected perpetualMarkets answer: {str(payload)[:200]}")
    return {
        ticker: instrument_from_market(ticker)
        for ticker, market in payload["markets"].items()
        if market.get("status") == "ACTIVE"
    }


PER_SYMBOL = PerSymbol(limits=LIMITS, topic=topic, request=request, read_reply=read_reply)

FEEDS: tuple[Feed, ...] = (
    Feed(
        name="dydx",
        exchange=EXCHANGE,
        url="wss://indexer.dydx.trade/v4/ws",
        subscribe=subscribe,
        parse=parse,
        needs_symbols=True,
        idle_timeout_s=120.0,  # the full trade tape of the followed markets
        instruments_url="https://indexer.dydx.trade/v4/perpetualMarkets",
        instruments_from_rest=instruments_from_rest,
        per_symbol=PER_SYMBOL,
        replays_on_subscribe=True,
        notes=(
            "full trade tape of every active market, 32 markets per connection (the Indexer's"
            " limit); the replay on subscribing is de-duplicated across restarts"
        ),
    ),
)
