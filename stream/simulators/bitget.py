"""Fake Bitget futures: the public `liquidation` topic of each product type.

Source: Bitget API docs, "WebSocket API" (the text `ping` every 30 s answered `pong`; a
subscribe answered by an `event: subscribe` echo of each arg; errors, `event: error`, are not
imitated here) and the public liquidation channel (`side`, `price`, `amount` in the quote
currency).
"""

from __future__ import annotations

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, dumps, op_subscribe_echo

TOPIC = "liquidation"
PRODUCT_TYPES = {
    ("linear", "USDT"): "usdt-futures",
    ("linear", "USDC"): "usdc-futures",
    ("inverse", "USD"): "coin-futures",
}
_WIRE_SIDE = {"long": "buy", "short": "sell"}


reply = op_subscribe_echo("liqstream-fake")


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    inst_type = PRODUCT_TYPES[(instrument.contract_type, instrument.quote)]
    item = {
        "symbol": instrument.symbol,
        "side": _WIRE_SIDE[side],
        "price": repr(price * instrument.units),
        "amount": repr(price * coins),  # quote currency
        "ts": str(ts_ms),
    }
    arg = {"instType": inst_type, "topic": TOPIC}
    return dumps({"data": [item], "arg": arg, "action": "update", "ts": ts_ms})


SIMULATORS = {"bitget": Simulator(render=render, reply=reply)}
