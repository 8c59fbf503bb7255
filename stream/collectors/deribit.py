"""Deribit: liquidations flagged in the public trade tape (JSON-RPC over websocket).

Documented trade item (inside {"method":"subscription","params":{"channel":..,"data":[..]}}):
    {"trade_seq":30289432,"trade_id":"48079254","timestamp":1590484156350,
     "tick_direction":0,"price":8950,"mark_price":8948.9,"instrument_name":"BTC-PERPETUAL",
     "index_price":8955.88,"direction":"sell","amount":10,"liquidation":"M"}

- `liquidation`: "M" the maker was liquidated, "T" the taker, "MT" both (two liquidations of
  the same amount, one per side). `direction` is the taker's: T + sell = a long died; M + buy
  = the maker sold = a long died.
- `amount`: USD for inverse perpetuals and futures, coins for linear (USDC/USDT) instruments.
- `public/set_heartbeat` asks the server for heartbeats; each `test_request` must be answered
  with `public/test` or the connection is closed. Unauthenticated trades arrive in 100 ms
  batches; the tape is complete.

Channels `trades.{kind}.{currency}.100ms` (Deribit API v2, "Subscriptions"): kinds `future`
(futures and perpetuals) and `option`, for every documented currency: BTC, ETH, USDC, USDT and
EURR. Combo trades are reported on their legs' instruments, so `future_combo` and
`option_combo` add nothing. Instruments quoted in EURR (euros) have no USD value here and are
rejected as `quote_not_usd`.

Options (`BTC-27DEC25-100000-C`, linear `SOL_USDC-27DEC25-200-C`) carry the same
`liquidation` flag. `amount` is coins of the underlying; `price` is the premium per coin, in
the underlying (BTC, ETH options) or in USDC (linear options). Decision: an option
liquidation's `notional_usd` is the premium that changed hands, amount x price (x the trade's
`index_price` for BTC and ETH options): what was liquidated, as for a future. Not the
underlying's value (amount x index price), which for an out-of-the-money option overstates it
a hundredfold. So `quantity` is the underlying coins and `price` the premium per coin in USD.
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
    sized_event,
)
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

CURRENCIES = ("BTC", "ETH", "USDC", "USDT", "EURR")  # Deribit's documented currencies
KINDS = ("future", "option")
CHANNELS = tuple(f"trades.{kind}.{currency}.100ms" for kind in KINDS for currency in CURRENCIES)
_USD_QUOTES = ("USD", "USDC", "USDT")
HEARTBEAT_S = 30


def subscribe(symbols: Sequence[str]) -> list[str]:
    heartbeat = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "public/set_heartbeat",
        "params": {"interval": HEARTBEAT_S},
    }
    channels = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "public/subscribe",
        "params": {"channels": list(CHANNELS)},
    }
    return [orjson.dumps(heartbeat).decode(), orjson.dumps(channels).decode()]


def answer(text: str) -> str | None:
    if '"test_request"' not in text:
        return None
    return orjson.dumps({"jsonrpc": "2.0", "id": 3, "method": "public/test", "params": {}}).decode()


def instrument_of(name: str) -> Instrument:
    """BTC-PERPETUAL, BTC-27DEC25: inverse, amount in USD; BTC_USDC-PERPETUAL: linear, coins."""
    base = name.split("-")[0]
    if "_" in base:
        coin, quote = base.split("_", 1)
        canonical, units = canonical_coin(coin)
        return Instrument(name, canonical, quote, "linear", 1.0, units)
    canonical, _ = canonical_coin(base)
    return Instrument(name, canonical, "USD", "inverse", 1.0)


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if "error" in frame:
        reject(parsed, "venue_error", frame)
        return parsed
    if frame.get("method") != "subscription":
        if not {"method", "result", "id"} & frame.keys():
            reject(parsed, "unexpected_shape", frame)  # neither JSON-RPC answer nor notice
        return parsed  # RPC answers and heartbeats
    data = frame.get("params", {}).get("data") if isinstance(frame.get("params"), dict) else None
    if not isinstance(data, list):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    return parse_items(parsed, data, lambda trade: _trade_events(trade, received_ts))


def is_option(name: str) -> bool:
    """BTC-27DEC25-100000-C, SOL_USDC-27DEC25-200-P."""
    parts = name.split("-")
    return len(parts) == 4 and parts[3] in ("C", "P")


def _trade_events(trade: Any, received_ts: int) -> list[LiquidationEvent] | None:
    """The liquidations of one trade: its taker's (T), its maker's (M), or both (MT)."""
    if not isinstance(trade, dict):
        raise Rejected("unexpected_shape", "not an object")
    if "liquidation" not in trade:
        return None  # absent on ordinary trades
    flag, direction, name = (
        trade.get("liquidation"),
        trade.get("direction"),
        trade.get("instrument_name"),
    )
    if (
        flag not in ("M", "T", "MT")
        or direction not in ("buy", "sell")
        or not isinstance(name, str)
    ):
        raise Rejected("unexpected_shape", "liquidation, direction or instrument_name")
    taker_died = "long" if direction == "sell" else "short"
    maker_died = "short" if direction == "sell" else "long"
    instrument = instrument_of(name)
    if instrument.quote not in _USD_QUOTES:
        raise Rejected("quote_not_usd", f"quote {instrument.quote}")
    try:
        amount, price = number(trade["amount"]), number(trade["price"])
        if is_option(name) and instrument.contract_type == "inverse":
            price *= number(trade["index_price"])  # premium in BTC/ETH -> USD per coin
    except (KeyError, TypeError, ValueError):
        raise Rejected("invalid_number", "amount, price or index_price") from None
    # An option is worth the premium that changed hands (module docstring).
    value = amounts(instrument, amount, price, premium=is_option(name))
    return [
        sized_event(
            exchange="deribit",
            instrument=instrument,
            side=taker_died if party == "T" else maker_died,
            value=value,
            ts=trade.get("timestamp", received_ts),
            received_ts=received_ts,
            event_id=f"{trade.get('trade_id')}:{party}",
        )
        for party in flag
    ]


FEEDS = (
    Feed(
        name="deribit",
        exchange="deribit",
        url="wss://www.deribit.com/ws/api/v2",
        subscribe=subscribe,
        parse=parse,
        answer=answer,
        idle_timeout_s=3 * HEARTBEAT_S,
        notes=(
            "complete trade tape of futures, perpetuals and options (BTC, ETH, USDC, USDT);"
            " options valued at the premium that changed hands; EURR-quoted ones rejected"
        ),
    ),
)
