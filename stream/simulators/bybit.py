"""Fake Bybit v5 linear and inverse: `allLiquidation.{symbol}` topics, one per symbol.

Source: Bybit v5 docs, "WebSocket Connect" (`{"op":"ping"}` answered with `success` and
`ret_msg: pong`; the args of one connection at most 21,000 characters) and "How to Subscribe
to Topics" (answers echo `req_id`, `conn_id` and `op`; a request naming one topic the server
has no handler for is refused whole with `error:handler not found,topic:<topic>`), and
"All Liquidation" (the frame).
"""

from __future__ import annotations

from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import (
    Simulator,
    TopicSession,
    client_message,
    dumps,
    quoted_price,
)

MAX_ARGS_CHARS = 21_000  # per connection ("WebSocket Connect")
TOPIC_PREFIX = "allLiquidation."


def _answer(message: dict[str, Any], ok: bool, ret_msg: str) -> str:
    return dumps(
        {
            "success": ok,
            "ret_msg": ret_msg,
            "conn_id": "fake",
            "req_id": message.get("req_id", ""),
            "op": message["op"],
        }
    )


def reply(text: str) -> list[str]:
    """A ping answered `ret_msg: pong`; a subscribe acknowledged, echoing `req_id`."""
    message = client_message(text)
    if message is None or message.get("op") not in ("subscribe", "ping"):
        return []
    return [_answer(message, True, "pong" if message["op"] == "ping" else "")]


class FakeSession(TopicSession):
    """One connection of Bybit's public v5 websocket, server side, as documented (see the
    module docstring). The wording of the refusal past 21,000 characters is not documented:
    here `error:args size exceeds 21000 characters for this connection`."""

    def reply(self, text: str) -> tuple[list[str], list[str]]:
        message = client_message(text)
        if message is None or message.get("op") not in ("subscribe", "unsubscribe", "ping"):
            return [], []
        if message["op"] == "ping":
            return [_answer(message, True, "pong")], []
        args = [a for a in message.get("args", []) if isinstance(a, str)]
        if message["op"] == "unsubscribe":
            self.topics.difference_update(args)
            return [_answer(message, True, "")], []
        unknown = [a for a in args if a in self.unknown_topics or not a.startswith(TOPIC_PREFIX)]
        if unknown:
            return [_answer(message, False, f"error:handler not found,topic:{unknown[0]}")], []
        new = [a for a in args if a not in self.topics]
        used = sum(len(t) for t in self.topics)  # the literal characters of the args
        if used + sum(len(t) for t in new) > MAX_ARGS_CHARS:
            refusal = f"error:args size exceeds {MAX_ARGS_CHARS} characters for this connection"
            return [_answer(message, False, refusal)], []
        self.topics.update(new)
        return [_answer(message, True, "")], new


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    if instrument.contract_type == "inverse":  # whole contracts of 1 USD
        size: float = max(1, round(coins * price / instrument.contract_size))
    else:
        size = coins / instrument.units / instrument.contract_size
    item = {
        "T": ts_ms,
        "s": instrument.symbol,
        "S": "Buy" if side == "long" else "Sell",  # the position's side
        "v": repr(size),
        "p": repr(quoted_price(instrument, price)),
    }
    frame = {
        "topic": f"{TOPIC_PREFIX}{instrument.symbol}",
        "type": "snapshot",
        "ts": ts_ms + 200,
        "data": [item],
    }
    return dumps(frame)


SIMULATOR = Simulator(render=render, reply=reply, session=FakeSession)
SIMULATORS = {"bybit-linear": SIMULATOR, "bybit-inverse": SIMULATOR}
