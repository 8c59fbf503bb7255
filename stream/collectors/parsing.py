"""Small helpers shared by the venue parsers, so that each venue file holds only its rules."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, TypeVar

import orjson

from stream.collectors.venue import UNKNOWN_SYMBOL, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent, make_event

T = TypeVar("T")

MAX_FRAME_CHARS = 1_000_000  # far above any venue's largest legitimate frame
# One frame yields at most this many rejects plus one `too_many_rejects` summary: a frame of a
# million broken items is one frame's worth of dead letters, not a flood (the raw topic keeps
# the whole frame).
MAX_REJECTS_PER_FRAME = 20
# Venue frames nest a handful of levels; a deeper one is refused before any venue code calls
# str() or repr() on it (Python recurses once per level and stops near 1,000).
MAX_FRAME_DEPTH = 64
TOO_MANY_REJECTS = "too_many_rejects"
MAX_ITEM_CHARS = 4_000  # of one item's text in a reject; the raw frame is kept whole elsewhere
_MAX_DEPTH = 50  # of an item rendered by hand when orjson cannot (nesting beyond its limit)


class TooManyRejects(Rejected):
    """The last reject of a frame that had more than `MAX_REJECTS_PER_FRAME`: counts the rest."""

    def __init__(self) -> None:
        self.more: Counter[str] = Counter()
        super().__init__(TOO_MANY_REJECTS)

    @property  # type: ignore[override]
    def detail(self) -> str:
        reasons = ", ".join(f"{name} {n}" for name, n in self.more.most_common())
        return f"and {self.more.total()} more rejects in this frame ({reasons})"

    @detail.setter
    def detail(self, value: str) -> None:
        """Rejected.__init__ sets it; the text always follows the counts."""


def _record(parsed: Parsed, reason: str, detail: Callable[[], str]) -> None:
    """Keep a reject below the frame's cap, else count it in the `too_many_rejects` summary
    (its text never built). The first `unknown_symbol` is always kept, in place of the last
    kept reject, because it is what makes the shell refresh the instruments."""
    rejects = parsed.rejects
    if len(rejects) < MAX_REJECTS_PER_FRAME:
        rejects.append(Rejected(reason, printable(detail())))
        return
    summary = rejects[-1]
    if not isinstance(summary, TooManyRejects):
        summary = TooManyRejects()
        rejects.append(summary)
    if reason == UNKNOWN_SYMBOL and all(r.reason != UNKNOWN_SYMBOL for r in rejects):
        displaced = rejects[-2]
        summary.more[displaced.reason] += 1
        rejects[-2] = Rejected(reason, printable(detail()))
        return
    summary.more[reason] += 1


def add_reject(parsed: Parsed, rejected: Rejected) -> None:
    """Record one reject, keeping a frame's rejects bounded (see `MAX_REJECTS_PER_FRAME`)."""
    _record(parsed, rejected.reason, lambda: rejected.detail)


def printable(text: str) -> str:
    """`text` as valid UTF-8: a lone surrogate (bytes that were not UTF-8, kept by Python's
    surrogateescape) is written as its escape instead of breaking the JSON writer."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def load_frame(text: str, parsed: Parsed) -> Any | None:
    """Decode a frame's JSON, or record a reject in `parsed` and return None."""
    if len(text) > MAX_FRAME_CHARS:
        add_reject(parsed, Rejected("oversized_frame", f"{len(text)} chars: {text[:200]}"))
        return None
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        add_reject(parsed, Rejected("invalid_json", f"{exc}: {text[:1000]}"))
        return None
    if not isinstance(frame, dict | list):  # no venue sends a bare number, string or null
        add_reject(parsed, Rejected("unexpected_shape", f"not an object or array: {text[:1000]}"))
        return None
    if _deeper_than(frame, MAX_FRAME_DEPTH):
        add_reject(parsed, Rejected("nesting_too_deep", f"over {MAX_FRAME_DEPTH}: {text[:1000]}"))
        return None
    return frame


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists/objects nest more than `limit` levels (iterative: never recurses)."""
    stack = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        elif not isinstance(node, list):
            continue
        if depth >= limit:
            return True
        for child in node:
            if isinstance(child, list | dict):
                stack.append((child, depth + 1))
    return False


def load_object(text: str, parsed: Parsed) -> dict[str, Any] | None:
    """A frame's JSON object, or a reject in `parsed` and None: every venue's messages are
    objects, so any other JSON value is `unexpected_shape`."""
    frame = load_frame(text, parsed)
    if frame is None:
        return None
    if not isinstance(frame, dict):
        reject(parsed, "unexpected_shape", frame)
        return None
    return frame


def item_text(item: Any) -> str:
    """The raw text of one frame item (at most `MAX_ITEM_CHARS`), for the dead-letter record."""
    try:
        text = orjson.dumps(item).decode()
    except TypeError:  # nested deeper than orjson writes
        text = _shallow_text(item, _MAX_DEPTH)
    if len(text) > MAX_ITEM_CHARS:
        return f"{text[:MAX_ITEM_CHARS]}... ({len(text)} chars)"
    return text


def _shallow_text(item: Any, depth: int) -> str:
    """JSON-like text of `item` down to `depth` levels, `...` below (never recurses deeper)."""
    if isinstance(item, list):
        if depth <= 0:
            return "[...]"
        return "[" + ",".join(_shallow_text(child, depth - 1) for child in item) + "]"
    if isinstance(item, dict):
        if depth <= 0:
            return "{...}"
        pairs = (f"{_shallow_text(k, 0)}:{_shallow_text(v, depth - 1)}" for k, v in item.items())
        return "{" + ",".join(pairs) + "}"
    try:
        return orjson.dumps(item).decode()
    except TypeError:
        return printable(repr(item)[:MAX_ITEM_CHARS])


def reject(parsed: Parsed, reason: str, item: Any) -> None:
    _record(parsed, reason, lambda: item_text(item))


def number(value: Any) -> float:
    """A JSON number, or a string holding one (venues send both), as a float. Raises
    TypeError for anything else: a boolean, null, a list or an object is never a number."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {_shallow_text(value, 2)[:200]}")
    return float(value)


def text_field(value: Any) -> str:
    """A JSON string field, or TypeError: a symbol or side that is a list or an object (or a
    number) must not reach a dict lookup, where it raises `unhashable type` or matches nothing."""
    if not isinstance(value, str):
        raise TypeError(f"not a string: {_shallow_text(value, 2)[:200]}")
    return value


def choose(table: Mapping[str, T], value: Any) -> T | None:
    """`table[value]` for a string `value`, else None (a list or object is never a key)."""
    return table.get(value) if isinstance(value, str) else None


# what reading a field of the wrong shape raises (a missing key, a wrong type, a bad number)
_MALFORMED = (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError)


def parse_items(
    parsed: Parsed,
    items: Iterable[Any],
    parse_one: Callable[[Any], LiquidationEvent | list[LiquidationEvent] | None],
) -> Parsed:
    """Each item of a frame to its event, or to a reject naming why: one bad item never spoils
    the rest of its frame. The one way venue parsers read items: `parse_one` returns the
    item's event (a list when one item records several liquidations: Deribit's "MT" trade),
    or None for an item that is not a liquidation (or that it rejected itself: an unknown
    symbol through `lookup`), and raises Rejected naming what is wrong, or lets any lookup
    error of a malformed item propagate (a `malformed_item` reject)."""
    for item in items:
        try:
            event = parse_one(item)
        except Rejected as exc:
            _item_reject(parsed, exc.reason, exc.detail, item)
        except _MALFORMED as exc:
            why = f"{type(exc).__name__}: {str(exc)[:200]}"  # e.g. KeyError: 'price'
            _item_reject(parsed, "malformed_item", why, item)
        else:
            if isinstance(event, list):
                parsed.events.extend(event)
            elif event is not None:
                parsed.events.append(event)
    return parsed


def _item_reject(parsed: Parsed, reason: str, why: str, item: Any) -> None:
    """A reject of one item: why, then the item's text."""
    _record(parsed, reason, lambda: f"{why} in {item_text(item)}")


def lookup(instruments: Instruments, symbol: Any, parsed: Parsed, item: Any) -> Instrument | None:
    """The instrument for `symbol`, or an `unknown_symbol` reject (the shell refreshes once);
    a symbol that is not a string is an `unexpected_shape` reject."""
    if not isinstance(symbol, str):
        reject(parsed, "unexpected_shape", item)
        return None
    instrument = instruments.get(symbol)
    if instrument is None:
        reject(parsed, UNKNOWN_SYMBOL, item)
    return instrument


class Amounts(NamedTuple):
    """What a liquidation is worth: USD per coin, coins, and USD."""

    price: float
    quantity: float
    notional_usd: Any  # a venue's own figure is passed on as sent; the schema validates it


def amounts(
    instrument: Instrument,
    size: float | None,
    quoted_price: float,
    *,
    in_contracts: bool = True,
    settle_usd: float | None = None,
    premium: bool = False,
    notional_usd: Any = None,
) -> Amounts:
    """`size` venue units at `quoted_price`, in coins and USD: the one place contract rules
    turn into coins and USD, every venue's case a parameter.

    - linear: `size` contracts of `contract_size` lots (`in_contracts=False`: `size` lots), a
      lot `units` coins (1000 for `1000PEPE`), the price quoted per lot. USD = coins x price.
    - inverse: `size` contracts of `contract_size` USD each, the price per coin.
    - quanto (`settle_usd`, BitMEX): `contract_size` units of the settlement currency per
      contract per USD of price, one unit worth `settle_usd`: USD = size x contract_size x
      price x settle_usd.
    - option premium (`premium`, Deribit): `size` lots of the underlying bought at a premium
      of `quoted_price` USD per lot: USD = size x premium, the money that changed hands.
    - `notional_usd`: the venue's own USD figure (turnover), used as is; with `size` None the
      quantity follows from it (USD / price lots).
    A non-positive price gives a NaN quantity where one is divided by it, so the schema names
    the bad field instead of a ZeroDivisionError.
    """
    count = math.nan if size is None else size
    if premium:
        quantity = count * instrument.units
        return Amounts(quoted_price / instrument.units, quantity, count * quoted_price)
    if settle_usd is not None:
        usd = count * instrument.contract_size * quoted_price * settle_usd
        return Amounts(quoted_price, _per_price(usd, quoted_price), usd)
    if instrument.contract_type == "inverse":
        usd = count * instrument.contract_size if notional_usd is None else notional_usd
        return Amounts(quoted_price, _per_price(usd, quoted_price), usd)
    price = quoted_price / instrument.units
    if size is None:
        lots = _per_price(notional_usd, quoted_price)
    else:
        lots = size * instrument.contract_size if in_contracts else size
    quantity = lots * instrument.units
    return Amounts(price, quantity, quantity * price if notional_usd is None else notional_usd)


def _per_price(usd: Any, price: float) -> float:
    return usd / price if price > 0 else math.nan


def sized_event(
    *,
    exchange: str,
    instrument: Instrument,
    side: str,
    value: Amounts,
    ts: Any,
    received_ts: int,
    event_id: str | None = None,
) -> LiquidationEvent:
    """The event of `instrument` worth `value` (see `amounts`); raises `Rejected` naming the
    field that is wrong."""
    return make_event(
        id=event_id,
        exchange=exchange,
        symbol=instrument.symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type=instrument.contract_type,
        side=side,
        price=value.price,
        quantity=value.quantity,
        notional_usd=value.notional_usd,
        ts=ts,
        received_ts=received_ts,
    )


def add_sized_event(
    parsed: Parsed,
    item: Any,
    *,
    exchange: str,
    instrument: Instrument,
    side: str,
    size: float,
    quoted_price: float,
    ts: Any,
    received_ts: int,
    event_id: str | None = None,
) -> None:
    """Append the event for `size` contracts at `quoted_price` (see `amounts`), or a reject
    naming why: for a parser that walks its items itself (the Hyperliquid node source); the
    venue modules return `sized_event` from `parse_items`."""
    try:
        parsed.events.append(
            sized_event(
                exchange=exchange,
                instrument=instrument,
                side=side,
                value=amounts(instrument, size, quoted_price),
                ts=ts,
                received_ts=received_ts,
                event_id=event_id,
            )
        )
    except Rejected as rejected:
        add_reject(parsed, Rejected(rejected.reason, f"{rejected.detail}: {item_text(item)}"))


def reply_object(text: str, *markers: str) -> dict[str, Any] | None:
    """The JSON object of a venue's control message (a subscribe answer), or None when the
    text holds none of `markers` (a cheap test before decoding: data frames are the many) or
    is not a JSON object. For `read_reply` functions, which never reject: data frames go to
    the parser, which does."""
    if not any(marker in text for marker in markers):
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return message if isinstance(message, dict) else None
