"""Gate perpetuals: the `futures.public_liquidates` channel, one feed per settle currency.

Gate serves each settle currency on its own socket and REST path (Gate Futures WebSocket v4
docs, "Server URL": BTC, USDT and USD1 contracts): `wss://fx-ws.gateio.ws/v4/ws/{settle}` and
`GET /api/v4/futures/{settle}/contracts`. A contract of another family is acknowledged on a
socket and never delivers, so `usdt` (feed `gate`), `btc` (`gate-btc`, the inverse `BTC_USD`)
and `usd1` (`gate-usd1`, `BTC_USD1` and others) are three feeds.

Completeness: since Gate's changelog of 2026-08-20 the channel aggregates per contract and
period and no longer discards events (before, "each contract can push up to one liquidate
order data every 1 second"), so the feed is complete, not a lower bound.

Sizes are contracts. Decimal-size contracts (`enable_decimal`, 14 on 2026-09-15, ETH_USDT
among them) arrive rounded to integers unless the handshake carries `X-Gate-Size-Decimal: 1`
(Gate API changelog; tardis-node sends it): the feed declares it in `handshake_headers`.
Linear (`type` direct, USDT and USD1, both stablecoins taken at par with USD like USDT
everywhere here): one contract = `quanto_multiplier` coins. Inverse
(`BTC_USD`, `quanto_multiplier` "0"): one contract = 1 USD (ccxt: "1 USD in WEB").

The live feed differs from the documentation (gateio/WebSocket-API issue #132, frames captured
2026-08-10): `result` is a bare object rather than an array, the item's timestamp is `time`
(ms) rather than `time_ms`, and `price` is a string. The parser accepts both shapes.

Side, **unconfirmed** by Gate: the sign of `size`. Gate signs every order size (positive buy,
negative sell), and `size` here is the "liquidate order quantity", so a negative size is a
forced sell, i.e. a long liquidated. Independent live readers of this channel agree (size < 0
-> long). Decision: negative = long, positive = short.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import (
    amounts,
    load_object,
    lookup,
    parse_items,
    reject,
    sized_event,
)
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

EXCHANGE = "gate"
CHANNEL = "futures.public_liquidates"
SETTLES = ("usdt", "btc", "usd1")  # Gate's documented settle currencies for perpetuals
# Without it, sizes of decimal-size contracts arrive rounded to integers (Gate API changelog).
SIZE_DECIMAL_HEADER = ("X-Gate-Size-Decimal", "1")
_MS_THRESHOLD = 100_000_000_000  # below this a timestamp is in seconds (Gate's `time` fields)


def subscribe_messages(symbols: Sequence[str], now_s: int) -> list[str]:
    """`!all` covers every contract; Gate wants the request time in seconds."""
    message = {"time": now_s, "channel": CHANNEL, "event": "subscribe", "payload": ["!all"]}
    return [orjson.dumps(message).decode()]


def subscribe(symbols: Sequence[str]) -> list[str]:
    return subscribe_messages(symbols, int(time.time()))


# The Feed's ping is a fixed text, so it cannot carry the request `time` (seconds) that Gate's
# request format lists. Should Gate ignore a ping without it, the websocket library's own
# protocol-level pings (every 20 s) still keep the connection alive.
PING_TEXT = orjson.dumps({"channel": "futures.ping"}).decode()


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _ts_ms(item: dict[str, Any], frame: dict[str, Any], received_ts: int) -> Any:
    value = item.get("time_ms", item.get("time", frame.get("time_ms", received_ts)))
    if isinstance(value, int | float) and not isinstance(value, bool) and value < _MS_THRESHOLD:
        return value * 1000
    return value


def _event(
    item: dict[str, Any],
    frame: dict[str, Any],
    instruments: Instruments,
    received_ts: int,
    parsed: Parsed,
) -> LiquidationEvent | None:
    instrument = lookup(instruments, item["contract"], parsed, item)
    if instrument is None:
        return None
    size = _number(item["size"])  # negative: a long was liquidated
    return sized_event(
        exchange=EXCHANGE,
        instrument=instrument,
        side="long" if size < 0 else "short",
        value=amounts(instrument, abs(size), _number(item["price"])),
        ts=_ts_ms(item, frame, received_ts),
        received_ts=received_ts,
    )


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """Sample frame (as documented; live frames carry one bare object in `result`):
    {"channel":"futures.public_liquidates","event":"update","time":1541505434,
     "time_ms":1541505434123,"result":[{"price":215.1,"size":-124,"time_ms":1541486601123,
     "contract":"BTC_USD"}]}
    """
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if frame.get("error"):
        reject(parsed, "venue_error", frame)
        return parsed
    if frame.get("channel") != CHANNEL or frame.get("event") != "update":
        if "channel" not in frame:
            reject(parsed, "unexpected_shape", frame)  # every Gate message names its channel
        return parsed  # subscribe acks, futures.pong
    result = frame.get("result")
    items: list[Any] = result if isinstance(result, list) else [result]
    return parse_items(
        parsed, items, lambda item: _event(item, frame, instruments, received_ts, parsed)
    )


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /api/v4/futures/{settle}/contracts`: [{"name":"BTC_USDT","type":"direct",
    "quanto_multiplier":"0.0001", ...}]. Direct: coins per contract = quanto_multiplier;
    inverse (`BTC_USD`, multiplier "0"): 1 USD per contract."""
    if not isinstance(payload, list):
        raise ValueError(f"unexpected contracts answer: {str(payload)[:200]}")
    instruments = {}
    for row in payload:
        name = row["name"]
        base, quote = name.split("_")[:2]
        coin, units = canonical_coin(base)
        if row.get("type") == "inverse":
            instruments[name] = Instrument(name, coin, quote, "inverse", 1.0)
        else:
            multiplier = float(row["quanto_multiplier"])
            instruments[name] = Instrument(name, coin, quote, "linear", multiplier, units)
    return instruments


def _feed(settle: str) -> Feed:
    return Feed(
        name="gate" if settle == "usdt" else f"gate-{settle}",
        exchange=EXCHANGE,
        url=f"wss://fx-ws.gateio.ws/v4/ws/{settle}",
        subscribe=subscribe,
        parse=parse,
        ping_text=PING_TEXT,
        ping_interval_s=15.0,
        idle_timeout_s=60.0,  # every ping is answered by futures.pong
        instruments_url=f"https://api.gateio.ws/api/v4/futures/{settle}/contracts",
        instruments_from_rest=instruments_from_rest,
        lower_bound=False,
        handshake_headers=(SIZE_DECIMAL_HEADER,),
        notes=(
            f"{settle.upper()}-settled perpetuals; every liquidation, aggregated per contract"
            " and period (Gate changelog 2026-08-20); side from the sign of size is"
            " unconfirmed by Gate (negative = long)"
        ),
    )


FEEDS: tuple[Feed, ...] = tuple(_feed(settle) for settle in SETTLES)
