"""Fake Zoomex v3 linear and inverse: Bybit's `allLiquidation.{symbol}` protocol.

Source: Zoomex v3 docs, "Connect" (heartbeat `{"op":"ping"}`, args of one public connection at
most 21,000 characters) and "All Liquidation": the messages and rules are Bybit v5's.
"""

from __future__ import annotations

from stream.simulators import bybit

SIMULATORS = {"zoomex-linear": bybit.SIMULATOR, "zoomex-inverse": bybit.SIMULATOR}
