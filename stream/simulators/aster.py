"""Fake Aster perpetual futures: Binance USD-M's `!forceOrder@arr` stream under Aster's URL.

Source: asterdex/api-docs, "aster-finance-futures-api": "Liquidation Order Streams" (the
frame, Binance's) and "Live Subscribing/Unsubscribing to streams" (SUBSCRIBE/UNSUBSCRIBE
answered `{"result": null, "id": <id>}`, LIST_SUBSCRIPTIONS with the connection's streams).
"""

from __future__ import annotations

from stream.simulators import binance
from stream.simulators.base import Simulator

SIMULATORS = {"aster": Simulator(render=binance.render_usdm, reply=binance.reply)}
