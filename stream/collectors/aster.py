"""Aster perpetual futures: the Binance-compatible `!forceOrder@arr` stream (all symbols).

Aster's futures API copies Binance USD-M (asterdex/api-docs, "aster-finance-futures-api":
"Liquidation Order Streams"), so the frame is Binance's and so is its parser
(`binance.parse_force_orders`, run with Aster's exchange id and rules):
    {"e":"forceOrder","E":1568014460893,"o":{"s":"BTCUSDT","S":"SELL","o":"LIMIT","f":"IOC",
     "q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014",
     "T":1568014460893}}

- `o.S` is the side of the forced order: SELL closes a long (side "long").
- Size `z` (accumulated filled) in coins, price `ap` (average fill; `p` while `ap` is 0).
- Completeness: per symbol only the latest liquidation within each 1,000 ms is pushed (a
  snapshot, as on Binance), so totals from this feed are a lower bound.
- Connection rules (same document, "Websocket Market Streams"): a connection is valid for 24
  hours; the server pings every 5 minutes and disconnects without a pong within 15 minutes
  (answered by the websocket library); at most 10 incoming messages per second and 200 streams
  per connection (one stream here, named in the URL path).
- Contract rules from `GET https://fapi.asterdex.com/fapi/v1/exchangeInfo`, the same shape as
  Binance's (`symbols[].baseAsset/quoteAsset`), one page.
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.collectors import binance
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed

EXCHANGE = "aster"
STREAM = "!forceOrder@arr"


def instrument_for(symbol: str, instruments: Instruments) -> Instrument | None:
    """The fetched rules of `symbol`, else the USD-M rule its name implies (BTCUSDT: BTC in
    coins quoted in USDT); Aster lists no coin-margined contracts."""
    return instruments.get(symbol) or binance.linear_instrument(symbol)


ASTER = binance.ForceOrderVenue(EXCHANGE, instrument_for)


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    return binance.parse_force_orders(ASTER, text, instruments, received_ts)


def subscribe(symbols: Sequence[str]) -> list[str]:
    return []  # the stream is named in the URL path


FEEDS = (
    Feed(
        name="aster",
        exchange=EXCHANGE,
        url=f"wss://fstream.asterdex.com/ws/{STREAM}",
        subscribe=subscribe,
        parse=parse,
        max_connection_age_s=23.5 * 3600,  # connections are cut after 24 h
        idle_timeout_s=900.0,  # quiet markets send nothing; the server pings every 5 min
        instruments_url="https://fapi.asterdex.com/fapi/v1/exchangeInfo",
        instruments_from_rest=binance.usdm_instruments_from_rest,
        lower_bound=True,
        notes=binance.NOTES,  # the same sampling: one per symbol per second, a lower bound
    ),
)
