"""Fake HTX (Huobi) futures and swaps: the public `liquidation_orders` notification topic.

Source: HTX docs, "Subscribe Liquidation Order Data (no authentication)" of each product line
(the frame: `direction` the forced order's side, `volume` contracts, `amount` coins,
`trade_turnover` quote currency), "WebSocket Subscription Address" and "Heartbeat and
Connection" (every frame gzip-compressed; the server pings `{"op":"ping","ts":"..."}` and
expects a pong), and for coin-margined futures (`/notification`) "Subscribe ... (sub)" and
"Unsubscribe ... (unsub)": each answer echoes `op`, `cid` and `topic` with `err-code` 0, a
refusal a non-zero `err-code` and an `err-msg`; unsubscribing what was not subscribed is
refused (the unsub rule table).
"""

from __future__ import annotations

import gzip
import re
from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import (
    Simulator,
    TopicSession,
    answer,
    client_message,
    dumps,
    now_ms,
)

TOPIC_TAIL = "liquidation_orders"
_ORDER_SIDE = {"long": "sell", "short": "buy"}  # `direction` is the forced order's side
_DELIVERY_CODE = re.compile(r"^(?P<coin>[A-Z0-9]+?)\d{6}$")  # coin-margined futures: BTC201225


def encode(text: str) -> bytes:
    return gzip.compress(text.encode())


def _ack(message: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "op": message["op"],
        "cid": message.get("cid", ""),
        "topic": str(message.get("topic", "")),
        "ts": now_ms(),
        "err-code": 0,
        **fields,
    }


class FuturesFakeSession(TopicSession):
    """One `/notification` connection: `sub` and `unsub` answered as the module docstring
    says. HTX documents the refusal's fields but not the code of an unknown coin's topic, so
    `FAKE_REFUSAL_CODE` is a stand-in."""

    FAKE_REFUSAL_CODE = 2011

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        message = client_message(text)
        if message is None or message.get("op") not in ("sub", "unsub"):
            return [], []  # pongs get no answer
        reply = _ack(message)
        topic = reply["topic"]
        new: list[str] = []
        if message["op"] == "sub" and (
            topic in self.unknown_topics or not topic.endswith(f".{TOPIC_TAIL}")
        ):
            reply.update({"err-code": self.FAKE_REFUSAL_CODE, "err-msg": f"invalid topic {topic}"})
        elif message["op"] == "sub":
            new = [] if topic in self.topics else [topic]
            self.topics.add(topic)
        elif topic in self.topics:
            self.topics.discard(topic)
        else:
            reply.update({"err-code": self.FAKE_REFUSAL_CODE, "err-msg": f"not subscribed {topic}"})
        return answer(reply), new


def reply(text: str) -> list[str]:
    """A sub acknowledged with `err-code` 0; pongs get no reply."""
    message = client_message(text)
    if message is None or message.get("op") != "sub":
        return []
    return answer(_ack(message))


def heartbeat() -> str:
    return dumps({"op": "ping", "ts": str(now_ms())})


def _render(instrument: Instrument, side: str, ts_ms: int, item: dict[str, Any]) -> str:
    code = instrument.symbol
    head = code.split("-")[0]
    delivery = _DELIVERY_CODE.match(head)
    base = delivery["coin"] if delivery else head
    item = {
        "symbol": base,
        "contract_code": code,
        "direction": _ORDER_SIDE[side],
        "offset": "close",
        **item,
        "created_at": ts_ms,
        "contract_type": "swap",
        "pair": code,
        "business_type": "swap",
    }
    topic = f"public.{base if _DELIVERY_CODE.match(code) else code}.{TOPIC_TAIL}"
    return dumps({"op": "notify", "topic": topic, "ts": ts_ms, "data": [item]})


def render_linear(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    amount = coins / instrument.units
    item = {
        "volume": amount / instrument.contract_size,
        "price": price * instrument.units,
        "amount": amount,
        "trade_turnover": price * coins,
        "trade_partition": instrument.quote,
    }
    return _render(instrument, side, ts_ms, item)


def render_coin(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    item = {"volume": price * coins / instrument.contract_size, "price": price, "amount": coins}
    return _render(instrument, side, ts_ms, item)


_COMMON: dict[str, Any] = {"reply": reply, "heartbeat": heartbeat, "encode": encode}
SIMULATORS = {
    "htx-linear": Simulator(render=render_linear, **_COMMON),
    "htx-coin": Simulator(render=render_coin, **_COMMON),
    "htx-futures": Simulator(render=render_coin, session=FuturesFakeSession, **_COMMON),
}
