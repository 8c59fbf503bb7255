"""Fake dYdX v4 Indexer: the `v4_trades` channel, one market per subscription.

Source: docs.dydx.exchange, "Indexer Websocket" (subscribe/unsubscribe messages, `subscribed`
carrying the market's recent trades, `channel_data` updates, trades of `type: LIQUIDATED`) and
the socks service's answers: at most 32 markets of `v4_trades` per connection
("Per-connection subscription limit reached for v4_trades (limit=32)."), an unknown market
"Invalid subscription id for channel: (v4_trades-<id>)", a market twice "Invalid subscribe
message: already subscribed".
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, TopicSession, client_message, dumps, stateless

CHANNEL = "v4_trades"
MAX_MARKETS = 32  # subscriptions per channel per connection
CONNECTION_ID = "00000000-0000-4000-8000-000000000000"
_ORDER_SIDE = {"long": "SELL", "short": "BUY"}


def iso(ts_ms: int) -> str:
    moment = datetime.fromtimestamp(0, UTC) + timedelta(milliseconds=ts_ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeSession(TopicSession):
    """One Indexer connection, server side (see the module docstring); `subscribed` carries no
    recent trades here."""

    def __init__(self, unknown_topics: frozenset[str] = frozenset()) -> None:
        super().__init__(unknown_topics)
        self._message_ids = iter(range(1, 1 << 62))

    def frame_topic(self, frame: dict[str, Any]) -> object:
        return frame.get("id")

    def _message(self, kind: str, **fields: Any) -> str:
        return dumps(
            {
                "type": kind,
                "connection_id": CONNECTION_ID,
                "message_id": next(self._message_ids),
                **fields,
            }
        )

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        message = client_message(text)
        if message is None or message.get("channel") != CHANNEL:
            return [], []
        market = str(message.get("id"))
        if message.get("type") == "unsubscribe":
            self.topics.discard(market)
            return [self._message("unsubscribed", channel=CHANNEL, id=market)], []
        if message.get("type") != "subscribe":
            return [], []
        if market in self.unknown_topics:
            error = f"Invalid subscription id for channel: ({CHANNEL}-{market})"
        elif market in self.topics:
            error = f"Invalid subscribe message: already subscribed ({CHANNEL}-{market})"
        elif len(self.topics) >= MAX_MARKETS:
            error = (
                f"Per-connection subscription limit reached for {CHANNEL} (limit={MAX_MARKETS})."
            )
        else:
            self.topics.add(market)
            subscribed = self._message(
                "subscribed", channel=CHANNEL, id=market, contents={"trades": []}
            )
            return [subscribed], [market]
        return [self._message("error", message=error)], []


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    trade = {
        "id": f"{seq:024x}",
        "side": _ORDER_SIDE[side],
        "size": repr(coins / instrument.units),
        "price": repr(price * instrument.units),
        "type": "LIQUIDATED",
        "createdAt": iso(ts_ms),
    }
    frame = {
        "type": "channel_data",
        "connection_id": CONNECTION_ID,
        "message_id": seq,
        "id": instrument.symbol,
        "channel": CHANNEL,
        "version": "2.1.0",
        "contents": {"trades": [trade]},
    }
    return dumps(frame)


SIMULATORS = {
    "dydx": Simulator(render=render, reply=stateless(FakeSession), session=FakeSession),
}
