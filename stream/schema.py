"""The normalized liquidation event (design.md section 1).

One shape for every venue, so that everything downstream (aggregation, rules, dashboards)
never needs to know where an event came from. Pure: no Kafka, no network.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import orjson

from stream.errors import Rejected

EXCHANGES = frozenset(
    {
        "binance",
        "bybit",
        "okx",
        "bitmex",
        "deribit",
        "htx",
        "gate",
        "bitfinex",
        "bitget",
        "kraken",
        "dydx",
    }
)
SIDES = frozenset({"long", "short"})
CONTRACT_TYPES = frozenset({"linear", "inverse"})

# Timestamps outside this range are almost certainly in seconds or microseconds, not ms.
_MIN_TS_MS = 1_262_304_000_000  # 2010-01-01
_MAX_TS_MS = 4_102_444_800_000  # 2100-01-01


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    """One liquidated position. `side` is the position that died, never the order side."""

    id: str
    exchange: str
    symbol: str
    coin: str
    quote: str
    contract_type: str
    side: str
    price: float
    quantity: float
    notional_usd: float
    ts: int
    received_ts: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> bytes:
        return orjson.dumps(self)


FIELDS: tuple[str, ...] = tuple(LiquidationEvent.__dataclass_fields__)


def event_id(exchange: str, symbol: str, ts: int, side: str, price: float, quantity: float) -> str:
    """Deterministic id for venues that give none, so replays and reconnects de-duplicate."""
    key = f"{exchange}|{symbol}|{ts}|{side}|{price!r}|{quantity!r}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def _positive_finite(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise Rejected(f"{name}_not_a_number", f"{name}={value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise Rejected(f"{name}_not_finite", f"{name}={value!r}")
    if number <= 0:
        raise Rejected(f"{name}_not_positive", f"{name}={value!r}")
    return number


def _timestamp_ms(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"{name}_invalid", f"{name}={value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise Rejected(f"{name}_invalid", f"{name}={value!r}")
    ts = int(value)
    if not _MIN_TS_MS <= ts <= _MAX_TS_MS:
        raise Rejected(f"{name}_out_of_range", f"{name}={value!r} is not ms since the epoch")
    return ts


def _non_empty(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Rejected(f"{name}_missing", f"{name}={value!r}")
    return value


def make_event(
    *,
    exchange: str,
    symbol: str,
    coin: str,
    quote: str,
    contract_type: str,
    side: str,
    price: Any,
    quantity: Any,
    notional_usd: Any,
    ts: Any,
    received_ts: Any,
    id: str | None = None,  # noqa: A002 - the schema's field name
) -> LiquidationEvent:
    """Build a validated event, or raise `Rejected` with a reason code naming the field."""
    if exchange not in EXCHANGES:
        raise Rejected("unknown_exchange", f"exchange={exchange!r}")
    symbol = _non_empty("symbol", symbol)
    coin = _non_empty("coin", coin)
    if coin != coin.upper():
        raise Rejected("coin_not_upper_case", f"coin={coin!r}")
    quote = _non_empty("quote", quote)
    if contract_type not in CONTRACT_TYPES:
        raise Rejected("contract_type_invalid", f"contract_type={contract_type!r}")
    if side not in SIDES:
        raise Rejected("side_invalid", f"side={side!r}")
    price_f = _positive_finite("price", price)
    quantity_f = _positive_finite("quantity", quantity)
    notional_f = _positive_finite("notional_usd", notional_usd)
    ts_i = _timestamp_ms("ts", ts)
    received_i = _timestamp_ms("received_ts", received_ts)
    if id is None:
        id = event_id(exchange, symbol, ts_i, side, price_f, quantity_f)  # noqa: A001
    else:
        id = _non_empty("id", id)  # noqa: A001
    return LiquidationEvent(
        id=id,
        exchange=exchange,
        symbol=symbol,
        coin=coin,
        quote=quote,
        contract_type=contract_type,
        side=side,
        price=price_f,
        quantity=quantity_f,
        notional_usd=notional_f,
        ts=ts_i,
        received_ts=received_i,
    )


def event_from_dict(data: Any) -> LiquidationEvent:
    """Validate a decoded JSON object (e.g. a `liquidations` record) into an event."""
    if not isinstance(data, dict):
        raise Rejected("not_an_object", f"expected a JSON object, got {type(data).__name__}")
    missing = [name for name in FIELDS if name not in data]
    if missing:
        raise Rejected("field_missing", "missing " + ", ".join(missing))
    return make_event(**{name: data[name] for name in FIELDS})


_NUMBER_TYPES = (int, float)
_INF = math.inf


def is_canonical(data: dict[str, Any]) -> bool:
    """Fast check that a decoded event is valid *and* already in canonical form (numbers as
    JSON numbers, every field present), so a hot path can pass its raw bytes through.

    False does not mean invalid: `event_from_dict` decides, and gives the reason.
    """
    try:
        price = data["price"]
        quantity = data["quantity"]
        notional = data["notional_usd"]
        ts = data["ts"]
        received_ts = data["received_ts"]
        return (
            len(data) == len(FIELDS)
            and type(price) in _NUMBER_TYPES
            and type(quantity) in _NUMBER_TYPES
            and type(notional) in _NUMBER_TYPES
            and 0 < price < _INF  # NaN fails every comparison
            and 0 < quantity < _INF
            and 0 < notional < _INF
            and type(ts) is int
            and type(received_ts) is int
            and _MIN_TS_MS <= ts <= _MAX_TS_MS
            and _MIN_TS_MS <= received_ts <= _MAX_TS_MS
            and data["exchange"] in EXCHANGES
            and data["side"] in SIDES
            and data["contract_type"] in CONTRACT_TYPES
            and type(data["id"]) is str
            and data["id"] != ""
            and type(data["symbol"]) is str
            and data["symbol"] != ""
            and type(data["quote"]) is str
            and data["quote"] != ""
            and type(data["coin"]) is str
            and data["coin"] != ""
            and data["coin"].isupper()
        )
    except (KeyError, TypeError):
        return False


def event_from_json(raw: bytes | str) -> LiquidationEvent:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", str(exc)) from None
    return event_from_dict(data)
