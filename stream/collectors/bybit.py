"""Bybit v5 linear and inverse: `allLiquidation.{symbol}` topics (one per symbol).

Documented frame:
    {"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,
     "data":[{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"}]}

- `S` is the *position* side: "Buy" means a long position was liquidated (the reverse of
  Binance; cryptofeed's issue #985 is this mistake). Not the deprecated `liquidation.{symbol}`
  topic, which is capped at one event per second per symbol.
- Size `v`: linear contracts are in (possibly 1000x) coins; inverse contracts are USD (1 USD
  each), so their notional is `v` itself.
- There is no wildcard: the symbol list comes from the instruments endpoint, and one
  subscribe request may carry at most 21,000 characters of `args`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from stream.collectors.parsing import add_sized_event, load_frame, reject
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.symbols import canonical_coin

MAX_ARGS_CHARS = 21_000
_QUOTES = ("USDT", "USDC", "USD")


def subscribe(symbols: Sequence[str]) -> list[str]:
    """As few subscribe requests as the 21,000-character `args` limit allows."""
    messages: list[str] = []
    batch: list[str] = []
    for topic in (f"allLiquidation.{symbol}" for symbol in symbols):
        if batch and len(orjson.dumps([*batch, topic])) > MAX_ARGS_CHARS:
            messages.append(orjson.dumps({"op": "subscribe", "args": batch}).decode())
            batch = []
        batch.append(topic)
    if batch:
        messages.append(orjson.dumps({"op": "subscribe", "args": batch}).decode())
    return messages


def _ping_text() -> str:
    return orjson.dumps({"req_id": "ping", "op": "ping"}).decode()


def fake_reply(text: str) -> list[str]:
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(message, dict) or message.get("op") not in ("subscribe", "ping"):
        return []
    op = message["op"]
    reply = {
        "success": True,
        "ret_msg": "pong" if op == "ping" else "",
        "conn_id": "fake",
        "req_id": message.get("req_id", ""),
        "op": op,
    }
    return [orjson.dumps(reply).decode()]


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


def _parse(text: str, instruments: Instruments, received_ts: int, inverse: bool) -> Parsed:
    parsed = Parsed()
    frame = load_frame(text, parsed)
    if frame is None:
        return parsed
    if not isinstance(frame, dict):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    if "op" in frame or "success" in frame:
        return parsed  # subscribe answer or pong
    topic = frame.get("topic")
    if (
        not isinstance(topic, str)
        or not topic.startswith("allLiquidation.")
        or not isinstance(frame.get("data"), list)
    ):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    for item in frame["data"]:
        _parse_item(item, instruments, received_ts, inverse, parsed)
    return parsed


def _parse_item(
    item: Any, instruments: Instruments, received_ts: int, inverse: bool, parsed: Parsed
) -> None:
    if not isinstance(item, dict):
        reject(parsed, "unexpected_shape", item)
        return
    symbol = item.get("s")
    side = {"Buy": "long", "Sell": "short"}.get(str(item.get("S")))  # position side
    instrument = _instrument(symbol, instruments, inverse) if isinstance(symbol, str) else None
    if side is None or instrument is None:
        reject(parsed, "unexpected_shape" if side is None else "unknown_symbol", item)
        return
    try:
        size = float(item["v"])
        price = float(item["p"])
    except (KeyError, TypeError, ValueError):
        reject(parsed, "invalid_number", item)
        return
    add_sized_event(
        parsed,
        item,
        exchange="bybit",
        instrument=instrument,
        side=side,
        size=size,
        quoted_price=price,
        ts=item.get("T", received_ts),
        received_ts=received_ts,
    )


def parse_linear(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    return _parse(text, instruments, received_ts, inverse=False)


def parse_inverse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    return _parse(text, instruments, received_ts, inverse=True)


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    if instrument.contract_type == "inverse":
        size: float = max(1, round(coins * price / instrument.contract_size))
        quoted = price
    else:
        size, quoted = coins / instrument.units / instrument.contract_size, price * instrument.units
    item = {
        "T": ts_ms,
        "s": instrument.symbol,
        "S": "Buy" if side == "long" else "Sell",
        "v": repr(size),
        "p": repr(quoted),
    }
    frame = {
        "topic": f"allLiquidation.{instrument.symbol}",
        "type": "snapshot",
        "ts": ts_ms + 200,
        "data": [item],
    }
    return orjson.dumps(frame).decode()


def instruments_from_rest(payload: Any) -> dict[str, Instrument]:
    """/v5/market/instruments-info: {"result": {"category", "list": [{"symbol", "baseCoin",
    "quoteCoin", "contractType": "LinearPerpetual" | "InversePerpetual" | ...}]}}."""
    instruments = {}
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


FEEDS = (
    Feed(
        name="bybit-linear",
        exchange="bybit",
        url="wss://stream.bybit.com/v5/public/linear",
        subscribe=subscribe,
        parse=parse_linear,
        needs_symbols=True,
        ping_text=_ping_text(),
        ping_interval_s=20.0,
        idle_timeout_s=120.0,  # pongs arrive every 20 s even when nothing is liquidated
        fake_reply=fake_reply,
        instruments_url="https://api.bybit.com/v5/market/instruments-info?category=linear&limit=1000",
        instruments_from_rest=instruments_from_rest,
        render=render,
    ),
    Feed(
        name="bybit-inverse",
        exchange="bybit",
        url="wss://stream.bybit.com/v5/public/inverse",
        subscribe=subscribe,
        parse=parse_inverse,
        needs_symbols=True,
        ping_text=_ping_text(),
        ping_interval_s=20.0,
        idle_timeout_s=120.0,
        fake_reply=fake_reply,
        instruments_url="https://api.bybit.com/v5/market/instruments-info?category=inverse&limit=1000",
        instruments_from_rest=instruments_from_rest,
        render=render,
    ),
)
