"""Hyperliquid liquidations from a non-validator node's fills output (pure: no files, no Kafka).

Why a node and not the public API: Hyperliquid's public websocket gives fills per wallet only
(`userFills`, `userEvents`) and its `trades` channel carries no liquidation marker, so a
venue-wide liquidation total cannot be built from it (guessing from liquidator addresses is
unreliable). A node started with `--write-fills` writes every fill of every user in the API
fills format, and each fill of a liquidation carries a `liquidation` object.

Layout and line shapes (github.com/hyperliquid-dex/node README, "Flags"; the node's
order_book_server reads the same files):
- `--write-fills`: `~/hl/data/node_fills/hourly/{YYYYMMDD}/{hour}`, one fill per line:
  `["0xuser", {"coin":"BTC","px":"97000.0","sz":"0.5","side":"A","time":1733400000123,
  "startPosition":"0.5","dir":"Liquidated Cross Long","closedPnl":"-1520.5","hash":"0x..",
  "oid":1,"crossed":true,"fee":"21.8","tid":2,"feeToken":"USDC",
  "liquidation":{"liquidatedUser":"0xuser","markPx":"96990.0","method":"market"}}]`.
- with `--batch-by-block`: `~/hl/data/node_fills_by_block/hourly/{YYYYMMDD}/{hour}`, one block
  per line: `{"local_time":..,"block_time":..,"block_number":N,"events":[["0xuser",{fill}],..]}`.

Both sides of a liquidation trade are written and both carry the `liquidation` object (naming
the same `liquidatedUser`). Only the liquidated user's own fill is counted, once per trade
(`tid`): its `side` closes the position that died (`A`, a sell, closes a long; `B` a short) and
`startPosition` is that position's signed size before the fill, so the two must agree. `sz` is
in coins (in thousands for `k`-prefixed coins such as kPEPE), `px` in USDC per unit, taken at
par with USD. One event per fill: a liquidation that sweeps several resting orders is several
events, as on the other venues' trade tapes. Spot fills (`@107`, `PURR/USDC`) are never
liquidations; HIP-3 perpetuals (`xyz:NVDA`) keep their dex prefix in the symbol.
"""

from __future__ import annotations

from typing import Any

import orjson

from stream.collectors.parsing import add_sized_event, choose, load_frame, number, reject
from stream.collectors.venue import Instrument, Parsed
from stream.symbols import canonical_coin

EXCHANGE = "hyperliquid"
QUOTE = "USDC"  # perpetuals margined and quoted in USDC
LIQUIDATION_KEY = "liquidatedUser"  # only a line holding this text can carry a liquidation
_POSITION_SIDE = {"A": "long", "B": "short"}  # the liquidated user's fill closes its position


def may_hold_liquidation(line: str) -> bool:
    """Cheap pre-filter for the shell: a line without the key holds no liquidation fill (a node
    writes ~100 GB of fills a day; only these lines are parsed and kept)."""
    return LIQUIDATION_KEY in line


def instrument(coin: str) -> Instrument | None:
    """Contract rules of a perpetual named as in the fill's `coin`; None for spot names."""
    if not coin or coin.startswith("@") or "/" in coin:
        return None
    base = coin.split(":", 1)[1] if ":" in coin else coin
    if not base:
        return None
    name, units = canonical_coin(base)
    return Instrument(coin, name, QUOTE, "linear", 1.0, units)


def parse_line(text: str, received_ts: int) -> Parsed:
    """One line of node fills output (either layout) to the liquidations it records."""
    parsed = Parsed()
    line = load_frame(text, parsed)
    if line is None:
        return parsed
    if isinstance(line, dict):  # --batch-by-block: one block per line
        events = line.get("events")
        if not isinstance(events, list):
            reject(parsed, "unexpected_shape", line)
            return parsed
        for entry in events:
            _parse_entry(entry, received_ts, parsed)
        return parsed
    _parse_entry(line, received_ts, parsed)
    return parsed


def _parse_entry(entry: Any, received_ts: int, parsed: Parsed) -> None:
    """`[user, fill]`: an event when `user` is the fill's liquidated user, else nothing."""
    if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[1], dict)):
        reject(parsed, "unexpected_shape", entry)
        return
    user, fill = entry
    liquidation = fill.get("liquidation")
    if liquidation is None:
        return  # an ordinary fill
    liquidated = liquidation.get(LIQUIDATION_KEY) if isinstance(liquidation, dict) else None
    if not isinstance(user, str) or not isinstance(liquidated, str):
        reject(parsed, "unexpected_shape", entry)
        return
    if user.lower() != liquidated.lower():
        return  # the counterparty's side of the same trade
    coin = fill.get("coin")
    rules = instrument(coin) if isinstance(coin, str) else None
    side = choose(_POSITION_SIDE, fill.get("side"))
    if rules is None or side is None:
        reject(parsed, "unexpected_shape", entry)
        return
    try:
        size = number(fill.get("sz"))
        price = number(fill.get("px"))
        start = number(fill["startPosition"]) if "startPosition" in fill else 0.0
        tid = fill.get("tid")
        if isinstance(tid, bool) or not isinstance(tid, int | str) or tid == "":
            raise TypeError("tid")
    except (TypeError, ValueError):
        reject(parsed, "invalid_number", entry)
        return
    if start != 0 and ("long" if start > 0 else "short") != side:
        reject(parsed, "side_inconsistent", entry)  # the fill does not close that position
        return
    add_sized_event(
        parsed,
        entry,
        exchange=EXCHANGE,
        instrument=rules,
        side=side,
        size=size,
        quoted_price=price,
        ts=fill.get("time"),
        received_ts=received_ts,
        event_id=f"{EXCHANGE}:{tid}:{user.lower()}",
    )


def render_fill(
    user: str,
    coin: str,
    side: str,
    price: float,
    size: float,
    ts_ms: int,
    tid: int,
    *,
    counterparty: str = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14",
) -> list[str]:
    """The two lines a node writes for one liquidation fill of `user`'s `side` position (the
    liquidated user's and the counterparty's), in the documented per-fill layout."""
    closing = "A" if side == "long" else "B"
    liquidation = {"liquidatedUser": user, "markPx": repr(price), "method": "market"}
    start = repr(size if side == "long" else -size)
    common = {"coin": coin, "px": repr(price), "sz": repr(size), "time": ts_ms, "tid": tid}
    own = {
        **common,
        "side": closing,
        "startPosition": start,
        "dir": f"Liquidated Cross {side.title()}",
        "closedPnl": "0.0",
        "hash": f"0x{tid:064x}",
        "oid": tid * 2,
        "crossed": True,
        "fee": "0.0",
        "feeToken": "USDC",
        "liquidation": liquidation,
    }
    other = {
        **common,
        "side": "B" if closing == "A" else "A",
        "startPosition": "0.0",
        "dir": "Open Long" if closing == "A" else "Open Short",
        "closedPnl": "0.0",
        "hash": f"0x{tid:064x}",
        "oid": tid * 2 + 1,
        "crossed": False,
        "fee": "0.0",
        "feeToken": "USDC",
        "liquidation": liquidation,
    }
    return [orjson.dumps([user, own]).decode(), orjson.dumps([counterparty, other]).decode()]
