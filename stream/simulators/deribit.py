"""Fake Deribit: JSON-RPC over websocket, `trades.{kind}.{currency}.100ms` channels.

Source: docs.deribit.com, JSON-RPC over websocket: `public/subscribe` and
`public/set_heartbeat` answered with `result` under the request `id`; a `heartbeat` of type
`test_request` must be answered with `public/test`; trades carry `liquidation` ("M", "T" or
"MT": which side of the trade was liquidated).
"""

from __future__ import annotations

from typing import Any

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, answer, client_message, dumps


def reply(text: str) -> list[str]:
    message = client_message(text)
    if message is None or "method" not in message:
        return []
    method, request_id = message["method"], message.get("id")
    if method == "public/subscribe":
        result: Any = message.get("params", {}).get("channels", [])
    elif method == "public/test":
        result = {"version": "1.2.26"}
    else:
        result = "ok"
    return answer({"jsonrpc": "2.0", "id": request_id, "result": result})


def heartbeat() -> str:
    return dumps({"jsonrpc": "2.0", "method": "heartbeat", "params": {"type": "test_request"}})


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    amount = coins * price if instrument.contract_type == "inverse" else coins / instrument.units
    trade = {
        "trade_seq": seq,
        "trade_id": f"fake-{seq}",
        "timestamp": ts_ms,
        "tick_direction": 0,
        "price": price * instrument.units,
        "mark_price": price,
        "instrument_name": instrument.symbol,
        "index_price": price,
        "direction": "sell" if side == "long" else "buy",  # the taker died: T
        "amount": amount,
        "liquidation": "T",
    }
    currency = instrument.quote if instrument.contract_type == "linear" else instrument.coin
    channel = f"trades.future.{currency}.100ms"
    frame = {
        "jsonrpc": "2.0",
        "method": "subscription",
        "params": {"channel": channel, "data": [trade]},
    }
    return dumps(frame)


SIMULATORS = {"deribit": Simulator(render=render, reply=reply, heartbeat=heartbeat)}
