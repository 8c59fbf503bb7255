"""Fake Gate futures: the `futures.public_liquidates` channel (all contracts).

Source: Gate API v4 docs, "Futures WebSocket v4": request/response format (`time`, `time_ms`,
`channel`, `event`, `result`), `futures.ping` answered `futures.pong`, a subscribe answered
`result: {"status": "success"}`, and the `futures.public_liquidates` update (`size` negative
when a long was liquidated, in contracts).
"""

from __future__ import annotations

from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, answer, client_message, contracts, dumps, now_ms

CHANNEL = "futures.public_liquidates"


def reply(text: str) -> list[str]:
    message = client_message(text)
    if message is None:
        return []
    ms = now_ms()
    header: dict[str, Any] = {"time": ms // 1000, "time_ms": ms}
    if message.get("channel") == "futures.ping":
        return answer({**header, "channel": "futures.pong", "event": "", "result": None})
    if message.get("channel") == CHANNEL and message.get("event") == "subscribe":
        ack = {**header, "channel": CHANNEL, "event": "subscribe", "result": {"status": "success"}}
        return answer(ack)
    return []


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    """The live shape: one bare object, `time` in ms, price as a string."""
    size = contracts(instrument, coins, price)
    item = {
        "contract": instrument.symbol,
        "price": repr(price * instrument.units),
        "time": ts_ms,
        "size": -size if side == "long" else size,
    }
    frame = {
        "time": ts_ms // 1000,
        "time_ms": ts_ms,
        "channel": CHANNEL,
        "event": "update",
        "result": item,
    }
    return dumps(frame)


# One per settle currency, the same protocol: `gate` (USDT), `gate-btc`, `gate-usd1`.
SIMULATORS = {
    name: Simulator(render=render, reply=reply) for name in ("gate", "gate-btc", "gate-usd1")
}
