"""Fake BitMEX: the `liquidation` table, subscribed in the URL (`?subscribe=liquidation`).

Source: bitmex.com/app/wsAPI, "Heartbeats" (send `ping`, the server answers `pong`) and the
`liquidation` table (`insert` rows of `orderID`, `symbol`, `side` of the forced order, `price`,
`leavesQty` in contracts). The subscription is in the URL, so nothing else is answered.
"""

from __future__ import annotations

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, dumps


def reply(text: str) -> list[str]:
    return ["pong"] if text == "ping" else []


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    if instrument.contract_type == "inverse":
        whole = max(1, round(coins * price / instrument.contract_size))
    else:
        whole = max(1, round(coins / instrument.contract_size))
    row = {
        "orderID": f"00000000-0000-0000-0000-{seq:012d}",
        "symbol": instrument.symbol,
        "side": "Sell" if side == "long" else "Buy",
        "price": price,
        "leavesQty": whole,
    }
    return dumps({"table": "liquidation", "action": "insert", "data": [row]})


SIMULATORS = {"bitmex": Simulator(render=render, reply=reply)}
