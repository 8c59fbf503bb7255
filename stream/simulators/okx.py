"""Fake OKX v5: the public `liquidation-orders` channel (SWAP and FUTURES).

Source: OKX API v5 docs, "WebSocket: Overview" (the text `ping` answered `pong`),
"Subscribe" (an `event: subscribe` echo of each arg) and "Liquidation orders channel" (the
frame: `details` of `bkPx`, `sz` in contracts, `side` of the forced order, `posSide`).
"""

from __future__ import annotations

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, contracts, dumps, op_subscribe_echo

CHANNEL = "liquidation-orders"


reply = op_subscribe_echo("fake")


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    size = contracts(instrument, coins, price)
    if instrument.contract_type == "inverse":  # whole contracts
        size = max(1, round(size))
    detail = {
        "bkLoss": "0",
        "bkPx": repr(price * instrument.units),
        "ccy": "",
        "posSide": side,
        "side": "sell" if side == "long" else "buy",
        "sz": repr(size),
        "ts": str(ts_ms),
    }
    family = instrument.symbol.rsplit("-", 1)[0]
    inst_type = "SWAP" if instrument.symbol.endswith("-SWAP") else "FUTURES"
    entry = {
        "details": [detail],
        "instFamily": family,
        "instId": instrument.symbol,
        "instType": inst_type,
        "uly": family,
    }
    return dumps({"arg": {"channel": CHANNEL, "instType": inst_type}, "data": [entry]})


SIMULATORS = {"okx": Simulator(render=render, reply=reply)}
