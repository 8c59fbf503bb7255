"""Zoomex linear and inverse perpetuals: Bybit's `allLiquidation.{symbol}` protocol.

Zoomex's v3 API is Bybit's v5 under Zoomex hosts (zoomexglobal.github.io/docs/v3): the same
topic, frame, subscribe answers, ping and 21,000-character `args` limit, so everything here is
Bybit's pure functions (`stream.collectors.bybit`) run with Zoomex's exchange id (its events
and their ids are Zoomex's from the parse on), endpoints and documents; nothing is copied.

Documented frame ("All Liquidation": "push all liquidations", every 500 ms, USDT and inverse
contracts):
    {"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,
     "data":[{"T":1739502302929,"s":"BTCUSDT","S":"Sell","v":"20000","p":"0.04499"}]}
- `S` is the *position* side: "When you receive a Buy update, this means that a long position
  has been liquidated". `v` executed size (linear: coins; inverse: USD contracts), `p` the
  bankruptcy price. Completeness: full (every liquidation, batched per 500 ms).
- Endpoints ("Connect"): `wss://stream.zoomex.com/v3/public/{linear,inverse}`; the All
  Liquidation page's example connects to a `/v5/public/linear` testnet path, the Connect page
  lists only `/v3/`, which is used. Per connection the `args` may total 21,000 characters; at
  most 500 new connections per 5 minutes per endpoint; heartbeat `{"op":"ping"}` (every 20 s).
- Instruments: `GET https://openapi.zoomex.com/cloud/trade/v3/market/instruments-info`
  (`category`, pages of at most 1,000 rows followed by `nextPageCursor`), Bybit's shape.
"""

from __future__ import annotations

import orjson

from stream.collectors import bybit
from stream.collectors.venue import Feed, Parser, PerSymbol, SubscriptionLimits

EXCHANGE = "zoomex"
LIMITS = SubscriptionLimits(
    source=(
        "Zoomex v3 docs, Connect: args of one public connection at most 21,000 characters;"
        " at most 500 new connections per 5 minutes per endpoint; 10 topics per request as"
        " for Bybit (no per-request count is documented)"
    ),
    topics_per_message=10,
    chars_per_connection=bybit.MAX_ARGS_CHARS,
)


PER_SYMBOL = PerSymbol(
    limits=LIMITS, topic=bybit.topic, request=bybit.request, read_reply=bybit.read_reply
)
_PING = orjson.dumps({"req_id": "ping", "op": "ping"}).decode()  # Connect: heartbeat packet
_REST = "https://openapi.zoomex.com/cloud/trade/v3/market/instruments-info"


def _feed(category: str, parse: Parser) -> Feed:
    return Feed(
        name=f"zoomex-{category}",
        exchange=EXCHANGE,
        url=f"wss://stream.zoomex.com/v3/public/{category}",
        subscribe=bybit.subscribe,
        parse=parse,
        needs_symbols=True,
        ping_text=_PING,
        ping_interval_s=20.0,
        idle_timeout_s=120.0,  # pongs arrive every 20 s even when nothing is liquidated
        instruments_url=f"{_REST}?category={category}&limit=1000",
        instruments_from_rest=bybit.instruments_from_rest,
        next_page=bybit.next_page,
        per_symbol=PER_SYMBOL,
    )


parse_linear = bybit.parser(EXCHANGE, inverse=False)
parse_inverse = bybit.parser(EXCHANGE, inverse=True)

FEEDS = (_feed("linear", parse_linear), _feed("inverse", parse_inverse))
