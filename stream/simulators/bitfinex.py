"""Fake Bitfinex: the `status` channel, key `liq:global`.

Source: docs.bitfinex.com, "WebSocket General" (subscribe answered `subscribed` with a
channel id, `ping` answered `pong`, `hb` heartbeats that need no answer) and "WebSocket Public
Status" (`liq:global` rows: `["pos", POS_ID, TIME_MS, null, SYMBOL, AMOUNT, BASE_PRICE, null,
IS_MATCH, IS_MARKET_SOLD, null, LIQUIDATION_PRICE]`, AMOUNT negative for a short).
"""

from __future__ import annotations

from stream.collectors.venue import Instrument
from stream.simulators.base import Simulator, answer, client_message, dumps, now_ms

FAKE_CHANNEL_ID = 91684  # the docs' example; the real server assigns one per connection
KEY = "liq:global"
_TRIGGER = 0  # IS_MATCH 0: the initial liquidation trigger


def reply(text: str) -> list[str]:
    message = client_message(text)
    if message is None:
        return []
    if message.get("event") == "subscribe":
        return answer(
            {"event": "subscribed", "channel": "status", "chanId": FAKE_CHANNEL_ID, "key": KEY}
        )
    if message.get("event") == "ping":
        return answer({"event": "pong", "ts": now_ms(), "cid": message.get("cid")})
    return []


def render(
    instrument: Instrument, side: str, price: float, coins: float, ts_ms: int, seq: int
) -> str:
    amount = coins / instrument.units
    wire_price = price * instrument.units
    row = [
        "pos",
        seq,
        ts_ms,
        None,
        instrument.symbol,
        amount if side == "long" else -amount,
        wire_price,  # BASE_PRICE (entry); not read
        None,
        _TRIGGER,
        1,
        None,
        wire_price,
    ]
    return dumps([FAKE_CHANNEL_ID, [row]])


SIMULATORS = {"bitfinex": Simulator(render=render, reply=reply)}
