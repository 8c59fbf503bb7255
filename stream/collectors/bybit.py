"""Bybit v5 linear and inverse: `allLiquidation.{symbol}` topics (one per symbol).

Documented frame:
    {"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,
     "data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}

- `S` is the *position* side: "Buy" means a long position was liquidated (the reverse of
  Binance; cryptofeed's issue #985 is this mistake). Not the deprecated `liquidation.{symbol}`
  topic, which is capped at one event per second per symbol.
- Size `v`: linear contracts are in (possibly 1000x) coins; inverse contracts are USD (1 USD
  each), so their notional is `v` itself.
- There is no wildcard: the symbol list comes from the instruments endpoint (pages of at most
  1,000 rows, followed by `nextPageCursor`), one topic per symbol.

Subscriptions (Bybit v5 docs, "WebSocket Connect" and "How to Subscribe to Topics"): the
`args` of one connection may total at most 21,000 characters, so a full listing needs several
connections; tardis-node sends 10 topics per request. Each request carries a `req_id` that the
answer echoes: `{"success":true,"ret_msg":"","conn_id":"...","req_id":"7","op":"subscribe"}`.
A request naming one topic Bybit has no handler for is refused whole, none of its topics
subscribed: `{"success":false,"ret_msg":"error:handler not found,topic:allLiquidation.X",...}`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from stream.collectors.parsing import (
    amounts,
    choose,
    load_object,
    number,
    parse_items,
    reject,
    reply_object,
    sized_event,
)
from stream.collectors.venue import (
    UNKNOWN_SYMBOL,
    Feed,
    Instrument,
    Instruments,
    Parsed,
    Parser,
    PerSymbol,
    SubscribeReply,
    SubscriptionLimits,
)
from stream.errors import Rejected
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

EXCHANGE = "bybit"
MAX_ARGS_CHARS = 21_000  # per connection (Bybit v5 "WebSocket Connect")
TOPIC_PREFIX = "allLiquidation."
LIMITS = SubscriptionLimits(
    source=(
        "Bybit v5 docs, WebSocket Connect: args of one connection at most 21,000 characters;"
        " 10 topics per request as tardis-node sends them (Bybit states no per-request count);"
        " no public connections-per-IP cap (only 500 new connections per 5 minutes)"
    ),
    topics_per_message=10,
    chars_per_connection=MAX_ARGS_CHARS,
)
_QUOTES = ("USDT", "USDC", "USD")
_NAMED_TOPIC = re.compile(r"topic:(\S+?)(?:,|$)")


def topic(symbol: str) -> str:
    return f"{TOPIC_PREFIX}{symbol}"


def request(op: str, topics: Sequence[str], req_id: str) -> str:
    return orjson.dumps({"req_id": req_id, "op": op, "args": list(topics)}).decode()


def read_reply(text: str) -> SubscribeReply | None:
    """A subscribe/unsubscribe answer (by `op`), with the topic Bybit names when it refuses."""
    message = reply_object(text, '"op"')
    if message is None or message.get("op") not in ("subscribe", "unsubscribe"):
        return None
    req_id = message.get("req_id")
    ok = message.get("success") is True
    reason = str(message.get("ret_msg", ""))
    named = tuple(_NAMED_TOPIC.findall(reason)) if not ok else ()
    return SubscribeReply(
        ok=ok,
        req_id=str(req_id) if req_id not in (None, "") else None,
        op=message["op"],
        rejected=named,
        reason=reason or "refused without a reason",
    )


def next_page(url: str, payload: object) -> str | None:
    """`result.nextPageCursor` names the next page of instruments-info; empty on the last."""
    result = payload.get("result") if isinstance(payload, dict) else None
    cursor = result.get("nextPageCursor") if isinstance(result, dict) else None
    if not isinstance(cursor, str) or not cursor:
        return None
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "cursor"] + [("cursor", cursor)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def subscribe(symbols: Sequence[str]) -> list[str]:
    """All topics in requests of at most the 21,000-character `args` limit (for tools that
    use one connection; the collector spreads topics over connections by `LIMITS`)."""
    messages: list[str] = []
    batch: list[str] = []
    for topic in (f"{TOPIC_PREFIX}{symbol}" for symbol in symbols):
        if batch and len(orjson.dumps([*batch, topic])) > MAX_ARGS_CHARS:
            messages.append(orjson.dumps({"op": "subscribe", "args": batch}).decode())
            batch = []
        batch.append(topic)
    if batch:
        messages.append(orjson.dumps({"op": "subscribe", "args": batch}).decode())
    return messages


def _ping_text() -> str:
    return orjson.dumps({"req_id": "ping", "op": "ping"}).decode()


def _instrument(symbol: str, instruments: Instruments, inverse: bool) -> Instrument | None:
    known = instruments.get(symbol)
    if known is not None:
        return known
    for quote in _QUOTES:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            coin, units = canonical_coin(symbol[: -len(quote)])
            if inverse:
                return Instrument(symbol, coin, "USD", "inverse", 1.0)
            return Instrument(symbol, coin, quote, "linear", 1.0, units)
    return None


def parse(
    text: str, instruments: Instruments, received_ts: int, *, exchange: str, inverse: bool
) -> Parsed:
    """An `allLiquidation` frame as events of `exchange`: Bybit's, or a venue speaking Bybit's
    protocol under its own id (Zoomex), whose event ids are then its own."""
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if "op" in frame or "success" in frame:
        return parsed  # subscribe answers are read by the connection (`read_reply`); pongs
    topic = frame.get("topic")
    if (
        not isinstance(topic, str)
        or not topic.startswith("allLiquidation.")
        or not isinstance(frame.get("data"), list)
    ):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    return parse_items(
        parsed,
        frame["data"],
        lambda item: _liquidation(item, instruments, received_ts, exchange, inverse),
    )


def _liquidation(
    item: Any, instruments: Instruments, received_ts: int, exchange: str, inverse: bool
) -> LiquidationEvent:
    if not isinstance(item, dict):
        raise Rejected("unexpected_shape", "not an object")
    symbol = item.get("s")
    side = choose({"Buy": "long", "Sell": "short"}, item.get("S"))  # position side
    instrument = _instrument(symbol, instruments, inverse) if isinstance(symbol, str) else None
    if side is None:
        raise Rejected("unexpected_shape", "S is neither Buy nor Sell")
    if instrument is None:
        raise Rejected(UNKNOWN_SYMBOL, "no rules for s")
    try:
        size = number(item["v"])
        price = number(item["p"])
    except (KeyError, TypeError, ValueError):
        raise Rejected("invalid_number", "v or p") from None
    return sized_event(
        exchange=exchange,
        instrument=instrument,
        side=side,
        value=amounts(instrument, size, price),
        ts=item.get("T", received_ts),
        received_ts=received_ts,
    )


def parser(exchange: str, *, inverse: bool) -> Parser:
    """`parse` for one venue and category, as a feed's `Parser`."""

    def parse_frame(text: str, instruments: Instruments, received_ts: int) -> Parsed:
        return parse(text, instruments, received_ts, exchange=exchange, inverse=inverse)

    return parse_frame


parse_linear = parser(EXCHANGE, inverse=False)
parse_inverse = parser(EXCHANGE, inverse=True)


def instruments_from_rest(payload: Any) -> dict[str, Instrument]:
    """/v5/market/instruments-info: {"result": {"category", "list": [{"symbol", "baseCoin",
    "quoteCoin", "contractType": "LinearPerpetual" | "InversePerpetual" | ...}]}}."""
    instruments = {}
    if not isinstance(payload, dict) or payload.get("retCode", 0) != 0:
        raise ValueError(f"unexpected instruments-info answer: {str(payload)[:200]}")
    for row in payload["result"]["list"]:
        coin, units = canonical_coin(row["baseCoin"])
        inverse = row["contractType"].startswith("Inverse")
        instruments[row["symbol"]] = Instrument(
            row["symbol"],
            coin,
            "USD" if inverse else row["quoteCoin"],
            "inverse" if inverse else "linear",
            1.0,
            1 if inverse else units,
        )
    return instruments


PER_SYMBOL = PerSymbol(limits=LIMITS, topic=topic, request=request, read_reply=read_reply)

FEEDS = (
    Feed(
        name="bybit-linear",
        exchange=EXCHANGE,
        url="wss://stream.bybit.com/v5/public/linear",
        subscribe=subscribe,
        parse=parse_linear,
        needs_symbols=True,
        ping_text=_ping_text(),
        ping_interval_s=20.0,
        idle_timeout_s=120.0,  # pongs arrive every 20 s even when nothing is liquidated
        instruments_url="https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000",
        instruments_from_rest=instruments_from_rest,
        next_page=next_page,
        per_symbol=PER_SYMBOL,
    ),
    Feed(
        name="bybit-inverse",
        exchange=EXCHANGE,
        url="wss://stream.bybit.com/v5/public/inverse",
        subscribe=subscribe,
        parse=parse_inverse,
        needs_symbols=True,
        ping_text=_ping_text(),
        ping_interval_s=20.0,
        idle_timeout_s=120.0,
        instruments_url="https://api.bybit.com/v5/market/instruments-info?category=inverse&limit=1000",
        instruments_from_rest=instruments_from_rest,
        next_page=next_page,
        per_symbol=PER_SYMBOL,
    ),
)
