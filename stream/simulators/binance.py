"""Fake Binance USD-M and COIN-M futures: the `!forceOrder@arr` stream.

Source: Binance derivatives docs, "Liquidation Order Streams" (the `forceOrder` frame) and
"Live Subscribing/Unsubscribing to streams" (`{"result": ..., "id": ...}` answers). The
stream is named in the URL path: no subscribe message is needed.
"""

from __future__ import annotations

from stream.collectors.venue import Instrument
from stream.simulators.base import Render, Simulator, answer, client_message, dumps

STREAM = "!forceOrder@arr"


def reply(text: str) -> list[str]:
    """A live SUBSCRIBE/UNSUBSCRIBE acked with `{"result": null, "id": <id>}`;
    LIST_SUBSCRIPTIONS answered with the connection's streams."""
    message = client_message(text)
    if message is None or "method" not in message:
        return []
    result = [STREAM] if message["method"] == "LIST_SUBSCRIPTIONS" else None
    return answer({"result": result, "id": message.get("id")})


def _render(coin_margined: bool) -> Render:
    def render(
        instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
    ) -> str:
        if coin_margined:  # whole contracts of `contractSize` USD
            size: float = max(1, round(coins * price / instrument.contract_size))
            quoted_price = price
        else:
            size, quoted_price = coins / instrument.units, price * instrument.units
        order = {
            "s": instrument.symbol,
            "S": "SELL" if side == "long" else "BUY",
            "o": "LIMIT",
            "f": "IOC",
            "q": repr(size),
            "p": repr(quoted_price),
            "ap": repr(quoted_price),
            "X": "FILLED",
            "l": repr(size),
            "z": repr(size),
            "T": ts_ms,
        }
        if coin_margined:
            order["ps"] = instrument.symbol.split("_")[0]
        return dumps({"e": "forceOrder", "E": ts_ms + 1, "o": order})

    return render


# Binance USD-M's wire format, shared with venues that copy it (Aster).
render_usdm = _render(coin_margined=False)

SIMULATORS = {
    "binance-usdm": Simulator(render=render_usdm, reply=reply),
    "binance-coinm": Simulator(render=_render(coin_margined=True), reply=reply),
}
