"""Fake Lighter perpetuals: the public `trade/{market_id}` channel, one market per subscribe.

Source: Lighter API docs, "WebSocket" (apidocs.lighter.xyz/docs/websocket-reference): one
channel per subscribe, answered by a `subscribed/trade` frame with the market's recent trades
(none here); frames name the channel `trade:0`; and "Rate Limits": 200 client messages per
rolling minute (per IP at Lighter, per connection here). Subscriptions per connection are
capped at 100, the lowest figure published. The error frames' wording is not documented:
`{"error":{"code":N,"message":...}}` with the codes nautilus_trader's Lighter adapter handles.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, TopicSession, answer, client_message, dumps, stateless

MAX_MARKETS = 100
MESSAGES_PER_MINUTE = 200
ALREADY_SUBSCRIBED = 30003
RATE_LIMITED = 30009
SUBSCRIBE_FAILED = 30012


def market_id(symbol: str) -> str:
    """`ETH:0` (the symbol the collector lists) -> `0`."""
    return symbol.rpartition(":")[2]


def _error(code: int, message: str) -> str:
    return dumps({"error": {"code": code, "message": message}})


class FakeSession(TopicSession):
    """One connection of Lighter's stream server (see the module docstring)."""

    def __init__(self, unknown_topics: frozenset[str] = frozenset()) -> None:
        super().__init__(unknown_topics)
        self._nonce = 0
        self._sent_s: deque[float] = deque()  # when the client's last messages arrived

    def frame_topic(self, frame: dict[str, Any]) -> object:
        """`trade:0` (as frames name it) -> `trade/0` (as subscribes name it)."""
        channel = frame.get("channel")
        if not isinstance(channel, str) or not channel.startswith("trade:"):
            return None
        return "trade/" + channel.removeprefix("trade:")

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        message = client_message(text)
        if message is None or message.get("type") not in ("subscribe", "unsubscribe"):
            return [], []
        now_s = time.monotonic()
        while self._sent_s and now_s - self._sent_s[0] >= 60.0:
            self._sent_s.popleft()
        self._sent_s.append(now_s)
        if len(self._sent_s) > MESSAGES_PER_MINUTE:
            return [_error(RATE_LIMITED, "too many messages")], []
        channel = message.get("channel")
        if not isinstance(channel, str) or not channel.startswith("trade/"):
            return [_error(SUBSCRIBE_FAILED, f"invalid channel: {channel}")], []
        frame_channel = "trade:" + channel.removeprefix("trade/")
        if message["type"] == "unsubscribe":
            self.topics.discard(channel)
            return answer({"channel": frame_channel, "type": "unsubscribed/trade"}), []
        if channel in self.unknown_topics:
            return [_error(SUBSCRIBE_FAILED, f"invalid channel: {channel}")], []
        if channel in self.topics:
            return [_error(ALREADY_SUBSCRIBED, "already subscribed")], []
        if len(self.topics) >= MAX_MARKETS:
            return [_error(SUBSCRIBE_FAILED, "too many subscriptions")], []
        self.topics.add(channel)
        self._nonce += 1
        subscribed = {
            "channel": frame_channel,
            "liquidation_trades": [],
            "nonce": self._nonce,
            "trades": [],
            "type": "subscribed/trade",
        }
        return answer(subscribed), [channel]


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    size = coins / instrument.units
    trade_id = ts_ms * 1000 + seq % 1000
    market = market_id(instrument.symbol)
    trade = {
        "trade_id": trade_id,
        "trade_id_str": str(trade_id),
        "type": "liquidation",
        "market_id": int(market),
        "size": repr(size),
        "price": repr(price * instrument.units),
        "usd_amount": repr(coins * price),
        "is_maker_ask": side == "short",
        "timestamp": ts_ms,
        "taker_position_size_before": repr(size if side == "long" else -size),
    }
    frame = {
        "channel": f"trade:{market}",
        "liquidation_trades": [trade],
        "nonce": seq,
        "trades": [],
        "type": "update/trade",
    }
    return dumps(frame)


SIMULATORS = {
    "lighter": Simulator(render=render, reply=stateless(FakeSession), session=FakeSession),
}
