"""The normalized liquidation event (docs/events.md).

One shape for every venue, so that everything downstream (aggregation, rules, dashboards)
never needs to know where an event came from. Pure: no Kafka, no network.
"""

from __future__ import annotations

import hashlib
import math
import sys
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

import msgspec
import orjson

from stream.errors import Rejected
from stream.exchanges import EXCHANGES

SIDES = frozenset({"long", "short"})
CONTRACT_TYPES = frozenset({"linear", "inverse"})

# Timestamps outside this range are almost certainly in seconds or microseconds, not ms.
_MIN_TS_MS = 1_262_304_000_000  # 2010-01-01
_MAX_TS_MS = 4_102_444_800_000  # 2100-01-01

# Plausibility bounds: no real liquidation comes near them, and every value inside them sums
# exactly in the worker's integer micro-dollars. The largest liquidations ever seen were a few
# hundred million USD; BTC trades near 1e5 USD, the smallest coins (PEPE-like, and the coins
# venues quote per 1000 or a million) near 1e-9 USD; the largest supplies are ~1e15 coins.
MAX_NOTIONAL_USD = 10e9
MIN_PRICE = 1e-12
MAX_PRICE = 1e8
MAX_QUANTITY = 1e18
# notional_usd and price x quantity agree within rounding: venues round prices to a tick and
# amounts to cents, so 1 % (or one cent, for amounts of a few cents) and not closer.
NOTIONAL_TOLERANCE = 0.01
NOTIONAL_TOLERANCE_USD = 0.01


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
    """A number, or a string of one (venues send both); never a boolean (`float(True)` is 1)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise Rejected(f"{name}_not_a_number", f"{name}={value!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise Rejected(f"{name}_not_a_number", f"{name}={value!r}") from None
    if math.isnan(number) or math.isinf(number):
        raise Rejected(f"{name}_not_finite", f"{name}={value!r}")
    if number <= 0:
        raise Rejected(f"{name}_not_positive", f"{name}={value!r}")
    return number


def implausible(price: float, quantity: float, notional_usd: float) -> Rejected | None:
    """Why positive finite `price`, `quantity` and `notional_usd` cannot be one real
    liquidation, or None. The one check every producer and consumer of events applies."""
    if notional_usd > MAX_NOTIONAL_USD:
        return Rejected(
            "notional_usd_implausible", f"notional_usd={notional_usd!r} above {MAX_NOTIONAL_USD}"
        )
    if not MIN_PRICE <= price <= MAX_PRICE:
        return Rejected("price_implausible", f"price={price!r} outside [{MIN_PRICE}, {MAX_PRICE}]")
    if quantity > MAX_QUANTITY:
        return Rejected("quantity_implausible", f"quantity={quantity!r} above {MAX_QUANTITY}")
    # price x quantity is at most 1e26 here: no overflow.
    product = price * quantity
    if abs(notional_usd - product) > max(
        NOTIONAL_TOLERANCE * max(notional_usd, product), NOTIONAL_TOLERANCE_USD
    ):
        return Rejected(
            "notional_usd_inconsistent",
            f"notional_usd={notional_usd!r} but price x quantity={product!r}",
        )
    return None


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
    # isinstance first: a list or object is unhashable, and `in` a frozenset would raise
    if not isinstance(exchange, str) or exchange not in EXCHANGES:
        raise Rejected("unknown_exchange", f"exchange={exchange!r}")
    symbol = _non_empty("symbol", symbol)
    coin = _non_empty("coin", coin)
    if coin != coin.upper():
        raise Rejected("coin_not_upper_case", f"coin={coin!r}")
    quote = _non_empty("quote", quote)
    if not isinstance(contract_type, str) or contract_type not in CONTRACT_TYPES:
        raise Rejected("contract_type_invalid", f"contract_type={contract_type!r}")
    if not isinstance(side, str) or side not in SIDES:
        raise Rejected("side_invalid", f"side={side!r}")
    price_f = _positive_finite("price", price)
    quantity_f = _positive_finite("quantity", quantity)
    notional_f = _positive_finite("notional_usd", notional_usd)
    problem = implausible(price_f, quantity_f, notional_f)
    if problem is not None:
        raise problem
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


_POSITIVE = Annotated[float, msgspec.Meta(gt=0, le=sys.float_info.max)]  # finite: le max
_TIMESTAMP = Annotated[int, msgspec.Meta(ge=_MIN_TS_MS, le=_MAX_TS_MS)]
_TEXT = Annotated[str, msgspec.Meta(min_length=1)]
_CANONICAL_TYPES: dict[str, Any] = {
    "exchange": Literal[tuple(sorted(EXCHANGES))],  # type: ignore[misc]
    "side": Literal[tuple(sorted(SIDES))],  # type: ignore[misc]
    "contract_type": Literal[tuple(sorted(CONTRACT_TYPES))],  # type: ignore[misc]
    "price": _POSITIVE,
    "quantity": _POSITIVE,
    "notional_usd": _POSITIVE,
    "ts": _TIMESTAMP,
    "received_ts": _TIMESTAMP,
}
# The event's fields with the types and bounds of a canonical record; msgspec checks them in C
# while it decodes (numbers as JSON numbers, no field missing or extra).
_CanonicalEvent = msgspec.defstruct(
    "CanonicalEvent",
    [(name, _CANONICAL_TYPES.get(name, _TEXT)) for name in FIELDS],
    forbid_unknown_fields=True,
)
_canonical_decoder = msgspec.json.Decoder(_CanonicalEvent)
_CANONICAL_LIST: Any = list[_CanonicalEvent]  # type: ignore[valid-type]


def decode_canonical(raw: bytes) -> Any | None:
    """The event of `raw` (attributes as in `LiquidationEvent`) if `raw` is valid *and*
    already in canonical form, so that a hot path can pass its bytes on as they are; else None.

    About three times faster than decoding and checking in Python, which is why the worker's
    first stage uses it. None does not mean invalid: `event_from_json` decides and gives the
    reason."""
    try:
        event: Any = _canonical_decoder.decode(raw)
    except msgspec.DecodeError:  # also every ValidationError
        return None
    if not event.coin.isupper():
        return None
    if implausible(event.price, event.quantity, event.notional_usd) is not None:
        return None
    return event


def canonical_dicts(items: list[Any]) -> tuple[list[dict[str, Any]], list[tuple[Any, Rejected]]]:
    """Split decoded JSON values into events ready to sum (canonical dicts) and rejects.

    For a consumer of already-validated records (the worker's second stage): the common case,
    all canonical, costs one check in C and returns `items` itself; otherwise each item is
    validated alone, a valid one in its normal form."""
    checked: list[Any] | None
    try:
        checked = msgspec.convert(items, _CANONICAL_LIST)
    except msgspec.ValidationError:
        checked = None
    if checked is not None and all(
        e.coin.isupper() and implausible(e.price, e.quantity, e.notional_usd) is None
        for e in checked
    ):
        return items, []
    events: list[dict[str, Any]] = []
    rejects: list[tuple[Any, Rejected]] = []
    for item in items:
        try:
            events.append(event_from_dict(item).to_dict())
        except Rejected as exc:
            rejects.append((item, exc))
    return events, rejects


def event_from_json(raw: bytes | str) -> LiquidationEvent:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", str(exc)) from None
    return event_from_dict(data)
