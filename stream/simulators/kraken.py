"""Fake Kraken Futures: the `trade` feed, one product id per subscription.

Source: Kraken Futures websocket docs, "Subscriptions" (`subscribed` echoes the feed and
product ids; a request with a product the server does not list is refused whole with
`{"event":"error","message":"Invalid product id"}`) and "Trade" (`type: liquidation`, `side`
of the taker, `qty` in contracts).
"""

from __future__ import annotations

from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import (
    Simulator,
    TopicSession,
    answer,
    client_message,
    contracts,
    dumps,
    stateless,
)

_TAKER_SIDE = {"long": "sell", "short": "buy"}


class FakeSession(TopicSession):
    """One Kraken Futures connection, server side (see the module docstring)."""

    def frame_topic(self, frame: dict[str, Any]) -> object:
        return frame.get("product_id")

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        message = client_message(text)
        if message is None or message.get("event") not in ("subscribe", "unsubscribe"):
            return [], []
        event = str(message["event"])
        reply: dict[str, Any] = {"event": f"{event}d", "feed": message.get("feed")}
        products = [str(p) for p in message.get("product_ids") or []]
        if "product_ids" in message:
            reply["product_ids"] = products
        if event == "unsubscribe":
            self.topics.difference_update(products)
            return answer(reply), []
        if any(p in self.unknown_topics for p in products):
            return answer({"event": "error", "message": "Invalid product id"}), []
        new = [p for p in products if p not in self.topics] if reply["feed"] == "trade" else []
        self.topics.update(new)
        return answer(reply), new


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    trade = {
        "feed": "trade",
        "product_id": instrument.symbol,
        "uid": f"00000000-0000-4000-8000-{seq:012d}",
        "side": _TAKER_SIDE[side],
        "type": "liquidation",
        "seq": seq,
        "time": ts_ms,
        "qty": contracts(instrument, coins, price),
        "price": price * instrument.units,
    }
    return dumps(trade)


SIMULATORS = {"kraken": Simulator(render=render, reply=stateless(FakeSession), session=FakeSession)}
