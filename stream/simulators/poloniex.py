"""Fake Poloniex perpetual futures (API v3): the public `liquidation_orders` channel.

Source: Poloniex API docs, "Futures Websocket API" (api-docs.poloniex.com/v3/futures/websocket):
`{"event":"ping"}` answered `{"event":"pong"}` (the server never pings); subscribe and
unsubscribe answered with the channel and symbols; anything else "ignored with basic error
response"; more than 500 requests a second per connection refused; and "Liquidation Orders"
(the frame). The error wording is not documented: `{"event":"error","message":...}` as
Poloniex's other channels answer.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import (
    Simulator,
    TopicSession,
    client_message,
    contracts,
    dumps,
    quoted_price,
    stateless,
)

CHANNEL = "liquidation_orders"
REQUESTS_PER_SECOND = 500  # per connection
PONG = dumps({"event": "pong"})


def _error(message: str) -> str:
    return dumps({"event": "error", "message": message})


def _answer(event: str, symbols: list[str]) -> str:
    return dumps({"event": event, "channel": CHANNEL, "symbols": symbols})


class FakeSession(TopicSession):
    """One connection of the v3 public futures websocket (see the module docstring)."""

    def __init__(self, unknown_topics: frozenset[str] = frozenset()) -> None:
        super().__init__(unknown_topics)
        self._requests_s: deque[float] = deque()

    def frame_topic(self, frame: dict[str, Any]) -> object:
        data = frame.get("data")
        if isinstance(data, list) and data and isinstance(data[0], dict):
            return data[0].get("s")
        return None

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        now_s = time.monotonic()
        while self._requests_s and now_s - self._requests_s[0] >= 1.0:
            self._requests_s.popleft()
        self._requests_s.append(now_s)
        if len(self._requests_s) > REQUESTS_PER_SECOND:
            return [_error("too many requests")], []
        message = client_message(text)
        event = message.get("event") if message is not None else None
        if event == "ping":
            return [PONG], []
        if message is None or event not in ("subscribe", "unsubscribe"):
            return [_error("invalid request")], []
        if message.get("channel") != [CHANNEL]:
            return [_error("invalid request")], []
        symbols = [s for s in message.get("symbols", []) if isinstance(s, str)]
        if event == "unsubscribe":
            self.topics.difference_update(symbols)
            return [_answer(event, symbols)], []
        unknown = [s for s in symbols if s in self.unknown_topics]
        if unknown or not symbols:
            return [_error(f"invalid symbol: {','.join(unknown)}")], []
        new = [s for s in symbols if s not in self.topics]
        self.topics.update(new)
        return [_answer(event, symbols)], new


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    item = {
        "s": instrument.symbol,
        "side": "SELL" if side == "long" else "BUY",
        "posSide": "BOTH" if seq % 2 else side.upper(),
        "sz": repr(contracts(instrument, coins, price)),
        "bkPx": repr(quoted_price(instrument, price)),
        "uTime": ts_ms,
        "ts": ts_ms + 25,
    }
    return dumps({"channel": CHANNEL, "data": [item]})


SIMULATORS = {
    "poloniex": Simulator(render=render, reply=stateless(FakeSession), session=FakeSession),
}
