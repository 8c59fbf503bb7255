"""Lighter perpetuals: liquidation trades on the public `trade/{market_id}` channel.

Source: Lighter API docs, "WebSocket" (apidocs.lighter.xyz/docs/websocket-reference), and
tardis-node's `lighter` mapper. Subscribe `{"type":"subscribe","channel":"trade/0"}`, one market
per message; frames carry the channel as `trade:0`:
    {"channel":"trade:0","liquidation_trades":[Trade],"nonce":8630448841,"trades":[Trade],
     "type":"update/trade"}
The answer to a subscribe is a `subscribed/trade` frame of the same shape holding the market's
recent trades (a replay: parsed too, repeats dropped by trade id across restarts).

- Liquidations are the items of `liquidation_trades` whose `type` is "liquidation" ("deleverage"
  and "market-settlement" close positions without a liquidation order and are not counted).
- The liquidated account is the taker. `is_maker_ask: true`: the maker sold, so the taker
  bought back a short (side "short"); false: the taker sold out of a long. When present,
  `taker_position_size_before` is signed (positive long, negative short) and must agree.
- `size` is in base units (coins; `1000PEPE` markets in lots of 1000), `price` in USD (USDC
  collateral, counted at par), `usd_amount` the venue's own size x price, used as the notional.
- `timestamp` is ms since the epoch; the event id is the trade id.

Symbols. The channel names a market by its integer id, so a symbol here is the market's
ticker and id, `ETH:0` (as the frames spell the channel, `trade:0`), from `GET
/api/v1/orderBookDetails`: {"code":200,"order_book_details":[{"symbol":"ETH","market_id":0,
"market_type":"perp","status":"active",...}],"spot_order_book_details":[...]}, one answer with
every market (no cursor); active perpetuals only.

Limits (Lighter docs, "Rate Limits"; nautilus_trader's Lighter adapter cites the same): 200
client messages per rolling minute and 50 unanswered ones per IP. The whole listing (some 150
markets, one subscribe each) fits one minute's allowance; sending 20 a second keeps fewer than
50 unanswered while answers take under 2.5 s. Subscriptions per connection are kept at 100,
the lowest figure published for Lighter (df-lighter-core lists 500). Keepalive:
the server closes a connection that sent no frame for 2 minutes; the websocket library's
pings (every 20 s) are such frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import (
    amounts,
    load_object,
    number,
    parse_items,
    reject,
    reply_object,
    text_field,
)
from stream.collectors.venue import (
    UNKNOWN_SYMBOL,
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

EXCHANGE = "lighter"
MAX_MARKETS = 100  # subscriptions per connection (see the module docstring)
LIMITS = SubscriptionLimits(
    source=(
        "Lighter API docs, Rate Limits: 200 messages per rolling minute and 50 unanswered per"
        " IP (20 a second keeps under 50 with answers within 2.5 s); 100 subscriptions per"
        " connection, the lowest figure published; one channel per subscribe message"
        " (WebSocket reference)"
    ),
    topics_per_message=1,
    topics_per_connection=MAX_MARKETS,
    messages_per_second=20.0,
)
ALREADY_SUBSCRIBED = 30003  # error codes as nautilus_trader's Lighter adapter names them
_DATA_TYPES = ("subscribed/trade", "update/trade")


def market_id(symbol: str) -> str:
    """`ETH:0` -> `0`."""
    return symbol.rpartition(":")[2]


def topic(symbol: str) -> str:
    return f"trade/{market_id(symbol)}"


def request(op: str, topics: Sequence[str], req_id: str) -> str:
    (channel,) = topics  # one channel per message
    return orjson.dumps({"type": op, "channel": channel}).decode()


def subscribe(symbols: Sequence[str]) -> list[str]:
    """One message per market (the collector spreads markets over connections by `LIMITS`)."""
    return [request("subscribe", [topic(symbol)], "") for symbol in sorted(set(symbols))]


def _channel_topic(channel: Any) -> str | None:
    """`trade:0` (as frames name it) -> `trade/0` (as subscribes name it)."""
    if not isinstance(channel, str) or not channel.startswith("trade:"):
        return None
    return "trade/" + channel.removeprefix("trade:")


def read_reply(text: str) -> SubscribeReply | None:
    """`subscribed/trade` names its channel; an error names none (the oldest request waiting
    is meant); "already subscribed" means what was asked for holds."""
    message = reply_object(text, '"subscribed/trade"', '"unsubscribed', '"error"')
    if message is None:
        return None
    kind = message.get("type")
    named = _channel_topic(message.get("channel"))
    if kind == "subscribed/trade":
        return SubscribeReply(op="subscribe", topics=(named,) if named else ())
    if isinstance(kind, str) and kind.startswith("unsubscribed"):
        return SubscribeReply(op="unsubscribe", topics=(named,) if named else ())
    error = message.get("error")
    if not isinstance(error, dict):
        return None
    if error.get("code") == ALREADY_SUBSCRIBED:
        return SubscribeReply(op="subscribe")
    reason = f"{error.get('code')}: {error.get('message')}"
    return SubscribeReply(ok=False, reason=reason)


def _by_market(instruments: Instruments) -> dict[int, Instrument]:
    found = {}
    for symbol, instrument in instruments.items():
        _, _, wire_id = symbol.rpartition(":")
        if wire_id.isdigit():
            found[int(wire_id)] = instrument
    return found


def _event(
    trade: dict[str, Any], markets: dict[int, Instrument], received_ts: int
) -> LiquidationEvent | None:
    kind = trade.get("type")
    if not isinstance(kind, str):
        raise Rejected("unexpected_shape", f"type={kind!r}")
    if kind != "liquidation":
        return None  # an ordinary trade in the wrong list, deleverage, market settlement
    wire_market = trade.get("market_id")
    if isinstance(wire_market, bool) or not isinstance(wire_market, int):
        raise Rejected("unexpected_shape", f"market_id={wire_market!r}")
    instrument = markets.get(wire_market)
    if instrument is None:
        raise Rejected(UNKNOWN_SYMBOL, f"market_id={wire_market}")
    maker_ask = trade.get("is_maker_ask")
    if not isinstance(maker_ask, bool):
        raise Rejected("unexpected_shape", f"is_maker_ask={maker_ask!r}")
    side = "short" if maker_ask else "long"  # the taker bought back a short, or sold a long
    before = trade.get("taker_position_size_before")
    if before is not None:
        position = number(before)
        if (position > 0 and side == "short") or (position < 0 and side == "long"):
            raise Rejected(
                "side_inconsistent", f"is_maker_ask={maker_ask} but position before={before}"
            )
    size, price = number(trade["size"]), number(trade["price"])
    usd = number(trade["usd_amount"])  # the venue's own size x price
    trade_id = trade.get("trade_id_str", trade.get("trade_id"))
    if isinstance(trade_id, bool) or not isinstance(trade_id, int | str):
        raise Rejected("unexpected_shape", f"trade_id={trade_id!r}")
    value = amounts(instrument, size, price, in_contracts=False, notional_usd=usd)
    return make_event(
        id=f"{EXCHANGE}:{trade_id}",
        exchange=EXCHANGE,
        symbol=instrument.symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type="linear",
        side=side,
        price=value.price,
        quantity=value.quantity,
        notional_usd=value.notional_usd,
        ts=trade.get("timestamp"),
        received_ts=received_ts,
    )


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """`subscribed/trade` and `update/trade` frames; other frames (connected, answers) give
    nothing, an error frame is a `venue_error` reject."""
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if "error" in frame:
        reject(parsed, "venue_error", frame)
        return parsed
    if frame.get("type") not in _DATA_TYPES:
        if "type" not in frame:
            reject(parsed, "unexpected_shape", frame)  # every Lighter message has a type
        return parsed  # connected, unsubscribed, pong
    trades = frame.get("liquidation_trades", [])
    if _channel_topic(frame.get("channel")) is None or not isinstance(trades, list):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    markets = _by_market(instruments)
    return parse_items(parsed, trades, lambda trade: _event(trade, markets, received_ts))


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /api/v1/orderBookDetails`: active perpetuals as `{symbol}:{market_id}`."""
    rows = payload.get("order_book_details") if isinstance(payload, dict) else None
    if (
        not isinstance(payload, dict)
        or payload.get("code", 200) != 200
        or not isinstance(rows, list)
    ):
        raise ValueError(f"unexpected orderBookDetails answer: {str(payload)[:200]}")
    instruments = {}
    for row in rows:
        if row.get("status") != "active" or row.get("market_type", "perp") != "perp":
            continue
        ticker = text_field(row["symbol"])
        coin, units = canonical_coin(ticker)
        symbol = f"{ticker}:{int(row['market_id'])}"
        instruments[symbol] = Instrument(symbol, coin, "USD", "linear", 1.0, units)
    return instruments


PER_SYMBOL = PerSymbol(limits=LIMITS, topic=topic, request=request, read_reply=read_reply)

FEEDS: tuple[Feed, ...] = (
    Feed(
        name="lighter",
        exchange=EXCHANGE,
        url="wss://mainnet.zklighter.elliot.ai/stream",
        subscribe=subscribe,
        parse=parse,
        needs_symbols=True,
        idle_timeout_s=120.0,  # the full trade tape of every followed market
        instruments_url="https://mainnet.zklighter.elliot.ai/api/v1/orderBookDetails",
        instruments_from_rest=instruments_from_rest,
        per_symbol=PER_SYMBOL,
        replays_on_subscribe=True,
        notes=(
            "full: every liquidation trade of every active perpetual (trade/{market_id},"
            " 100 markets per connection); the replay on subscribing is de-duplicated"
        ),
    ),
)
