"""HTX (Huobi) futures and swaps: the public `liquidation_orders` notification topic.

Three product lines, three endpoints (HTX docs, "Subscribe Liquidation Order Data (no
authentication)" for each):
- USDT-margined swaps and futures on `/linear-swap-notification`: `public.*.liquidation_orders`
  covers every contract, swaps (`BTC-USDT`) and dated futures (`BTC-USDT-210625`) alike;
- coin-margined swaps on `/swap-notification`: `public.*.liquidation_orders` (documented:
  "when the $contract_code value is *, it stands for subscribing ... all coins");
- coin-margined futures (`BTC201225`) on `/notification`: `public.$symbol.liquidation_orders`,
  one topic per coin ("BTC"), no wildcard documented, so this feed subscribes per coin of its
  instrument list (`htx-futures`, `PerSymbol`: coins listed later are subscribed and delisted
  ones unsubscribed on the live connection after each instrument refresh).
Every frame, pings included, travels gzip-compressed; the server pings about every 5 s and
cuts a connection that leaves 5 pings unanswered.

Source: HTX docs "[General] Subscribe Liquidation Orders (no authentication)" and
"Subscribe Liquidation Order Data" (frame fields: `direction` is the forced order's side,
`volume` contracts, `amount` coins, `trade_turnover` quote currency, `price` bankruptcy price,
`created_at` ms), and the order-push heartbeat `{"op": "ping", "ts": "..."}`.

Subscriptions of `htx-futures` (HTX docs, Coin-M futures "Subscribe Liquidation Order Data (no
authentication) (sub)" and "Unsubscribe ... (unsub)", htx.com/en-us/opend/newApiPages/
?id=28c34bd5-77ae-11ed-9966-0242ac110003): one `topic` per `{"op":"sub","cid":...}` message;
"No limit for 'sub' request" and no topics-per-connection limit documented; the answer echoes
`op`, `cid` and `topic` with `"err-code": 0` on success, otherwise a non-zero `err-code` and
an `err-msg`; unsubscribing the very topic subscribed is allowed (the unsub rule table).
Coverage counts contracts: a coin's contracts (this week, next week, quarter...) are all
subscribed once that coin's topic is acknowledged.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from stream.collectors.parsing import (
    Amounts,
    amounts,
    load_object,
    lookup,
    parse_items,
    reject,
    reply_object,
)
from stream.collectors.venue import (
    Feed,
    Instrument,
    Instruments,
    Parsed,
    PerSymbol,
    SubscribeReply,
    SubscriptionLimits,
)
from stream.errors import Rejected
from stream.schema import LiquidationEvent, make_event
from stream.symbols import canonical_coin

EXCHANGE = "htx"
_TOPIC_TAIL = "liquidation_orders"
TOPIC = f"public.*.{_TOPIC_TAIL}"  # `*`: every contract of the endpoint's product line
_POSITION_SIDE = {"sell": "long", "buy": "short"}  # `direction` is the forced order's side
_COIN_CODE = re.compile(r"^[A-Z0-9]+-USD$")  # coin-margined swaps: BTC-USD, ETH-USD
_DELIVERY_CODE = re.compile(r"^(?P<coin>[A-Z0-9]+?)(?P<date>\d{6})$")  # futures: BTC201225


def decode(message: str | bytes) -> str:
    """Wire message -> text; corrupt gzip raises ValueError (the shell dead-letters it)."""
    if isinstance(message, str):
        return message
    try:
        return gzip.decompress(message).decode()
    except zlib.error as exc:
        raise ValueError(f"corrupt gzip frame: {exc}") from None


def answer(text: str) -> str | None:
    """Pong for a server ping, echoing `ts` with its type: `{"op":"ping","ts":"1"}` -> pong."""
    if "ping" not in text:
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("op") == "ping" and "ts" in message:
        return orjson.dumps({"op": "pong", "ts": message["ts"]}).decode()
    if set(message) == {"ping"}:  # the market-data endpoints' style, in case HTX switches
        return orjson.dumps({"pong": message["ping"]}).decode()
    return None


def subscribe(symbols: Sequence[str]) -> list[str]:
    """One wildcard subscription per connection; no symbol list needed."""
    return [orjson.dumps({"op": "sub", "cid": "liqstream", "topic": TOPIC}).decode()]


def delivery_coin(code: str) -> str:
    """`BTC201225` -> `BTC`: the coin a coin-margined future's topic is named by."""
    match = _DELIVERY_CODE.match(code)
    return match["coin"] if match else code


def subscribe_per_coin(symbols: Sequence[str]) -> list[str]:
    """Coin-margined futures: one `public.{coin}.liquidation_orders` per coin listed."""
    coins = sorted({delivery_coin(symbol) for symbol in symbols})
    return [
        orjson.dumps(
            {"op": "sub", "cid": "liqstream", "topic": f"public.{coin}.{_TOPIC_TAIL}"}
        ).decode()
        for coin in coins
    ]


FUTURES_LIMITS = SubscriptionLimits(
    source=(
        "HTX docs, Coin-M futures 'Subscribe Liquidation Order Data (no authentication)':"
        " one topic per sub message, 'No limit for sub request', no per-connection limit"
    ),
    topics_per_message=1,
)
_OPS = {"subscribe": "sub", "unsubscribe": "unsub"}


def coin_topic(symbol: str) -> str:
    """`BTC201225` (any BTC contract) -> `public.BTC.liquidation_orders`."""
    return f"public.{delivery_coin(symbol)}.{_TOPIC_TAIL}"


def coin_request(op: str, topics: Sequence[str], req_id: str) -> str:
    (topic,) = topics  # one topic per message
    return orjson.dumps({"op": _OPS[op], "cid": req_id, "topic": topic}).decode()


def read_reply(text: str) -> SubscribeReply | None:
    """A sub/unsub answer: `err-code` 0 acknowledges `topic`, anything else refuses it with
    `err-msg`. `cid` echoes the request's id."""
    message = reply_object(text, '"err-code"')
    if message is None or message.get("op") not in ("sub", "unsub"):
        return None
    op = "subscribe" if message["op"] == "sub" else "unsubscribe"
    topic = message.get("topic")
    named = (topic,) if isinstance(topic, str) else ()
    cid = message.get("cid")
    req_id = cid if isinstance(cid, str) and cid else None
    code = message.get("err-code")
    if code == 0:
        return SubscribeReply(req_id=req_id, op=op, topics=named)
    reason = f"err-code {code}: {message.get('err-msg', '')}".strip().rstrip(":")
    return SubscribeReply(
        ok=False, req_id=req_id, op=op, topics=named, rejected=named, reason=reason
    )


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _instrument_from_code(code: str, contract_type: str) -> Instrument:
    """`BTC-USDT` (or a dated `BTC-USDT-210625`) -> its coin and quote."""
    base, quote = code.split("-")[:2]
    coin, units = canonical_coin(base.upper())
    return Instrument(code, coin, quote.upper(), contract_type, 1.0, units)


def _linear_event(
    item: dict[str, Any], instruments: Instruments, received_ts: int, _: Parsed
) -> LiquidationEvent:
    """USDT-margined: `amount` is coins and `trade_turnover` USDT, so no metadata is needed."""
    code = item["contract_code"]
    instrument = instruments.get(code) or _instrument_from_code(code, "linear")
    coins = _number(item["amount"])  # in lots of `units` coins
    turnover = item.get("trade_turnover")  # the venue's USDT figure; absent: coins x price
    if turnover is None and "trade_turnover" in item:
        raise Rejected("notional_usd_not_a_number", "notional_usd=None")  # as the schema says
    value = amounts(
        instrument, coins, _number(item["price"]), in_contracts=False, notional_usd=turnover
    )
    return _event(item, instrument, value, received_ts)


def _coin_instrument(code: str, instruments: Instruments) -> Instrument | None:
    known = instruments.get(code)
    if known is not None:
        return known
    if _DELIVERY_CODE.match(code):
        derived = Instrument(code, canonical_coin(delivery_coin(code))[0], "USD", "inverse")
    elif _COIN_CODE.match(code):
        derived = _instrument_from_code(code, "inverse")
    else:
        return None
    # Documented rule where no metadata was fetched: 100 USD per BTC contract, 10 otherwise.
    face_usd = 100.0 if derived.coin == "BTC" else 10.0
    return Instrument(code, derived.coin, derived.quote, "inverse", face_usd, derived.units)


def _coin_event(
    item: dict[str, Any], instruments: Instruments, received_ts: int, parsed: Parsed
) -> LiquidationEvent | None:
    """Coin-margined: USD = contracts x contract face value (100 BTC, 10 others)."""
    instrument = _coin_instrument(item["contract_code"], instruments)
    if instrument is None:
        lookup(instruments, item["contract_code"], parsed, item)  # unknown_symbol: refresh
        return None
    value = amounts(instrument, _number(item["volume"]), _number(item["price"]))
    return _event(item, instrument, value, received_ts)


def _event(
    item: dict[str, Any],
    instrument: Instrument,
    value: Amounts,
    received_ts: int,
) -> LiquidationEvent:
    return make_event(
        exchange=EXCHANGE,
        symbol=instrument.symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type=instrument.contract_type,
        side=_POSITION_SIDE.get(str(item.get("direction")).lower(), ""),
        price=value.price,
        quantity=value.quantity,
        notional_usd=value.notional_usd,
        ts=item.get("created_at"),
        received_ts=received_ts,
    )


ItemParser = Callable[[dict[str, Any], Instruments, int, Parsed], LiquidationEvent | None]


def _parse(
    text: str, instruments: Instruments, received_ts: int, item_parser: ItemParser
) -> Parsed:
    """Sample frame (decompressed):
    {"op":"notify","topic":"public.ETH-USDT.liquidation_orders","ts":1789670297217,
     "data":[{"symbol":"ETH","contract_code":"ETH-USDT","direction":"buy","offset":"close",
     "volume":500,"price":2446.26,"created_at":1789670297212,"amount":5,
     "trade_turnover":12231.3,"contract_type":"swap","pair":"ETH-USDT",
     "business_type":"swap","trade_partition":"USDT"}]}
    """
    parsed = Parsed()
    frame = load_object(text, parsed)
    if frame is None:
        return parsed
    if frame.get("op") != "notify":  # sub acks, pings, pongs; a failed sub is an error
        if frame.get("err-code") not in (None, 0) or frame.get("op") == "error":
            reject(parsed, "venue_error", frame)
        elif "op" not in frame:
            reject(parsed, "unexpected_shape", frame)  # every HTX message names its op
        return parsed
    data = frame.get("data")
    if not str(frame.get("topic")).endswith(".liquidation_orders") or not isinstance(data, list):
        reject(parsed, "unexpected_shape", frame)
        return parsed
    return parse_items(
        parsed, data, lambda item: item_parser(item, instruments, received_ts, parsed)
    )


def parse_linear(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    return _parse(text, instruments, received_ts, _linear_event)


def parse_coin(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    return _parse(text, instruments, received_ts, _coin_event)


def _instruments_from_rest(payload: object, contract_type: str) -> dict[str, Instrument]:
    """`GET .../swap_contract_info` (and the futures' `contract_contract_info`):
    {"status":"ok","data":[{"symbol":"BTC","contract_code":"BTC-USD","contract_size":100,
    ...}]}. Linear sizes are in coins (BTC-USDT 0.001), coin-margined sizes in USD."""
    if not isinstance(payload, dict) or payload.get("status") != "ok":
        raise ValueError(f"unexpected contract_info answer: {str(payload)[:200]}")
    instruments = {}
    for row in payload["data"]:
        code = row["contract_code"]
        if _DELIVERY_CODE.match(code):  # BTC201225: the coin is the row's symbol
            code = f"{row['symbol']}-USD-{code[len(row['symbol']) :]}"
        derived = _instrument_from_code(code, contract_type)
        symbol, contract_size = row["contract_code"], float(row["contract_size"])
        instruments[symbol] = Instrument(
            symbol, derived.coin, derived.quote, contract_type, contract_size, derived.units
        )
    return instruments


def linear_instruments_from_rest(payload: object) -> dict[str, Instrument]:
    return _instruments_from_rest(payload, "linear")


def coin_instruments_from_rest(payload: object) -> dict[str, Instrument]:
    return _instruments_from_rest(payload, "inverse")


_COMMON: dict[str, Any] = {
    "exchange": EXCHANGE,
    "subscribe": subscribe,
    "decode": decode,
    "answer": answer,
    "idle_timeout_s": 30.0,  # the server pings every ~5 s
    "notes": "completeness of the public liquidation topic is not documented by HTX",
}

FEEDS: tuple[Feed, ...] = (
    Feed(
        name="htx-linear",
        url="wss://api.hbdm.com/linear-swap-notification",
        parse=parse_linear,
        instruments_url="https://api.hbdm.com/linear-swap-api/v1/swap_contract_info",
        instruments_from_rest=linear_instruments_from_rest,
        **_COMMON,
    ),
    Feed(
        name="htx-coin",
        url="wss://api.hbdm.com/swap-notification",
        parse=parse_coin,
        instruments_url="https://api.hbdm.com/swap-api/v1/swap_contract_info",
        instruments_from_rest=coin_instruments_from_rest,
        **_COMMON,
    ),
    Feed(
        name="htx-futures",
        url="wss://api.hbdm.com/notification",
        parse=parse_coin,
        instruments_url="https://api.hbdm.com/api/v1/contract_contract_info",
        instruments_from_rest=coin_instruments_from_rest,
        **{**_COMMON, "subscribe": subscribe_per_coin},
        needs_symbols=True,
        per_symbol=PerSymbol(
            limits=FUTURES_LIMITS, topic=coin_topic, request=coin_request, read_reply=read_reply
        ),
    ),
)
