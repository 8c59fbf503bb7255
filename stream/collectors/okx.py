"""OKX v5: the `liquidation-orders` channel for SWAP and FUTURES (all instruments of a type).

Documented frame:
    {"arg":{"channel":"liquidation-orders","instType":"SWAP"},"data":[{"details":[
     {"bkLoss":"0","bkPx":"0.007831","ccy":"","posSide":"short","side":"buy","sz":"13",
      "ts":"1692266434010"}],"instFamily":"IOST-USDT","instId":"IOST-USDT-SWAP",
      "instType":"SWAP","uly":"IOST-USDT"}]}

- Every element of `details` is one liquidation (ccxt reads only the first).
- `posSide` names the position; when it is `net`, the order side decides (sell = long died).
- `sz` is contracts of `ctVal` from /api/v5/public/instruments: linear (USDT/USDC) in coins,
  inverse (USD) in USD. Linear USD = sz * ctVal * bkPx; inverse USD = sz * ctVal.
- Text heartbeat: send `ping` when quiet, the server answers `pong`; 30 s without data closes.
- OKX says the channel is not complete, and data may arrive out of time order; replays after
  subscribing are removed by the deterministic event id.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from stream.collectors.parsing import (
    amounts,
    load_frame,
    lookup,
    number,
    parse_items,
    reject,
    sized_event,
)
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent
from stream.symbols import canonical_coin

CHANNEL = "liquidation-orders"
INST_TYPES = ("SWAP", "FUTURES")


def subscribe(symbols: Sequence[str]) -> list[str]:
    args = [{"channel": CHANNEL, "instType": inst_type} for inst_type in INST_TYPES]
    return [orjson.dumps({"op": "subscribe", "args": args}).decode()]


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    parsed = Parsed()
    if text == "pong":
        return parsed
    frame = load_frame(text, parsed)
    if frame is None:
        return parsed
    if isinstance(frame, dict) and "event" in frame:
        if frame["event"] == "error":
            reject(parsed, "venue_error", frame)
        return parsed  # subscribe answers
    if not isinstance(frame, dict) or not isinstance(frame.get("data"), list):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    for entry in frame["data"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("details"), list):
            reject(parsed, "unexpected_shape", entry)
            continue
        instrument = lookup(instruments, entry.get("instId"), parsed, entry)
        if instrument is None:
            continue
        liquidation = functools.partial(
            _detail_event, instrument=instrument, received_ts=received_ts
        )
        parse_items(parsed, entry["details"], liquidation)
    return parsed


def _side(detail: dict[str, Any]) -> str | None:
    position = detail.get("posSide")
    if position in ("long", "short"):
        return position
    if position in ("net", "", None):
        return {"sell": "long", "buy": "short"}.get(str(detail.get("side")))
    return None


def _detail_event(detail: Any, instrument: Instrument, received_ts: int) -> LiquidationEvent:
    side = _side(detail) if isinstance(detail, dict) else None
    if side is None:
        raise Rejected("unexpected_shape", "posSide/side names no position")
    try:
        contracts = number(detail.get("sz"))
        price = number(detail.get("bkPx"))
        ts = int(detail.get("ts"))
    except (TypeError, ValueError):
        raise Rejected("invalid_number", "sz, bkPx or ts") from None
    return sized_event(
        exchange="okx",
        instrument=instrument,
        side=side,
        value=amounts(instrument, contracts, price),
        ts=ts,
        received_ts=received_ts,
    )


def instrument_requests(url: str) -> list[str]:
    """One request per instType (`GET /api/v5/public/instruments` takes exactly one): the URL
    with its `instType` set to SWAP, then to FUTURES. Every instrument of a type comes in one
    answer (the endpoint is not paginated)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "instType"]
    return [
        urlunsplit(parts._replace(query=urlencode([*query, ("instType", inst_type)])))
        for inst_type in INST_TYPES
    ]


def instruments_from_rest(payload: Any) -> dict[str, Instrument]:
    """/api/v5/public/instruments?instType=SWAP|FUTURES: {"code":"0","data": [{"instId",
    "ctVal", "ctType", "ctValCcy", "settleCcy", ...}]}; linear ctVal is in `ctValCcy` coins,
    inverse in USD. FUTURES ids carry their expiry (`BTC-USD-260327`)."""
    if not isinstance(payload, dict) or str(payload.get("code", "0")) != "0":
        raise ValueError(f"unexpected instruments answer: {str(payload)[:200]}")
    instruments = {}
    for row in payload["data"]:
        base, quote = row["instId"].split("-")[:2]
        coin, units = canonical_coin(base)
        inverse = row["ctType"] == "inverse"
        instruments[row["instId"]] = Instrument(
            row["instId"],
            coin,
            "USD" if inverse else quote,
            "inverse" if inverse else "linear",
            float(row["ctVal"]),
            1 if inverse else units,
        )
    return instruments


FEEDS = (
    Feed(
        name="okx",
        exchange="okx",
        url="wss://ws.okx.com:8443/ws/v5/public",
        subscribe=subscribe,
        parse=parse,
        ping_text="ping",
        ping_interval_s=20.0,  # OKX closes connections with no data for 30 s
        idle_timeout_s=60.0,
        instruments_url="https://www.okx.com/api/v5/public/instruments",
        instruments_from_rest=instruments_from_rest,
        instrument_requests=instrument_requests,
        lower_bound=True,
        notes="OKX documents this channel as not complete: totals are a lower bound",
    ),
)
