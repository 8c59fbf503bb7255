"""Bitfinex: the `status` channel with key `liq:global`, every liquidated position on the venue.

Rows are `["pos", POS_ID, TIME_MS, null, SYMBOL, AMOUNT, BASE_PRICE, null, IS_MATCH,
IS_MARKET_SOLD, null, PRICE_ACQUIRED]` (docs.bitfinex.com "ws-public-status" and
"rest-public-liquidations"). AMOUNT is the position in coins, positive for a long.
BASE_PRICE is the position's *entry* price ("the price at which user entered the position").

Pairing (docs.bitfinex.com "ws-public-status": IS_MATCH "0: initial liquidation trigger,
1: market execution"). A position yields one trigger row (the whole position, AMOUNT) and one
or more execution rows (each a part of it, at the price it was sold). Live, the trigger row may
carry no price (`null` at index 11) and its execution row may arrive first: a `tETHF0:USTF0`
trigger of -8.6007 ETH with a null price came one frame after its execution row at 235.52
(tardis-node's captured frames). So the rows of a position are paired by POS_ID:
- a trigger row with its price counts at once (PRICE_ACQUIRED, "price at which the position
  has been acquired"; not BASE_PRICE, the entry price);
- a trigger row without a price counts as soon as an execution row of the position is seen
  (before or after it): the whole position at the volume-weighted price of the executions
  seen by then;
- execution rows wait up to `PAIRING_HORIZON_MS` for their trigger;
- after the horizon, execution rows without a trigger count on their own (their summed
  amount at their weighted price: the trigger was missed, e.g. before subscribing), and a
  price-less trigger without an execution counts at BASE_PRICE, the position's entry price:
  an estimate (live, 222.25 against an execution at 235.52), chosen over losing the position;
  only a trigger without an entry price either is dead-lettered (`trigger_without_price`).
Each position counts once: the event id is POS_ID, and rows of a position already counted are
ignored for `DONE_MEMORY_MS`. The pairing state lives in the shell: `Pairing` is one per
pipeline (`Feed.stateful_parse`), holding the state that the pure `pair_rows` updates; it is
checked on every frame, and the server's heartbeat (every 15 s) bounds how late a held row is
settled. `parse` (the stateless reading of one frame) settles everything at once.
The feed covers perpetuals (`tBTCF0:USTF0`) and margin positions (`tBTCUSD`); both are sized
in coins. Pairs quoted in neither USD nor USDt (`UST`) have no USD value here and are rejected.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from stream.collectors.parsing import add_reject, amounts, item_text, load_frame, reject, text_field
from stream.collectors.venue import Feed, Instrument, Instruments, Parsed
from stream.errors import Rejected
from stream.schema import LiquidationEvent, make_event
from stream.symbols import canonical_coin

EXCHANGE = "bitfinex"
KEY = "liq:global"
_QUOTES = {"USD": "USD", "UST": "USDT"}  # Bitfinex calls USDt "UST"
_TRIGGER, _MATCH = 0, 1  # IS_MATCH: 0 initial liquidation trigger, 1 market execution
_ROW_LENGTH = 12
PAIRING_HORIZON_MS = 10_000  # live, the partner row came one frame later
DONE_MEMORY_MS = 600_000  # late rows of a counted position are ignored this long


def subscribe(symbols: Sequence[str]) -> list[str]:
    message = {"event": "subscribe", "channel": "status", "key": KEY}
    return [orjson.dumps(message).decode()]


def instrument_from_symbol(symbol: str) -> Instrument | None:
    """`tBTCF0:USTF0` -> BTC/USDT, `tETHUSD` -> ETH/USD; None for a non-USD quote."""
    pair = symbol[1:] if symbol.startswith("t") else symbol
    base, quote = pair.split(":", 1) if ":" in pair else (pair[:-3], pair[-3:])
    canonical_quote = _QUOTES.get(quote.removesuffix("F0"))
    base = base.removesuffix("F0")
    if not base or canonical_quote is None:
        return None
    coin, units = canonical_coin(base)
    return Instrument(symbol, coin, canonical_quote, "linear", 1.0, units)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


def _positive(value: Any) -> bool:
    """A usable price: a finite positive number (or numeric text), never a boolean."""
    try:
        return 0 < _number(value) < float("inf")
    except (TypeError, ValueError):
        return False


def _event(
    row: list[Any], price: float, quantity: float, instruments: Instruments, received_ts: int
) -> LiquidationEvent:
    """The event of position `row` (the trigger, or the first execution): `quantity` coins
    of `row`'s symbol at `price` per quoted unit."""
    symbol = text_field(row[4])
    instrument = instruments.get(symbol) or instrument_from_symbol(symbol)
    if instrument is None:
        raise Rejected("quote_not_usd", f"symbol={symbol!r}")
    value = amounts(instrument, quantity, price, in_contracts=False)
    return make_event(
        exchange=EXCHANGE,
        symbol=symbol,
        coin=instrument.coin,
        quote=instrument.quote,
        contract_type="linear",
        side="long" if _number(row[5]) > 0 else "short",
        price=value.price,
        quantity=value.quantity,
        notional_usd=value.notional_usd,
        ts=row[2],
        received_ts=received_ts,
        id=str(row[1]),
    )


def _weighted_price(matches: list[list[Any]]) -> tuple[float, float]:
    """(summed amount, volume-weighted price) of execution rows."""
    sizes = [abs(_number(row[5])) for row in matches]
    total = sum(sizes)
    if total <= 0:
        return total, _number(matches[0][11])
    return total, sum(a * _number(row[11]) for a, row in zip(sizes, matches, strict=True)) / total


@dataclass
class Held:
    """Rows of one position waiting for their partner."""

    first_seen_ms: int
    trigger: list[Any] | None = None
    matches: list[list[Any]] = field(default_factory=list)


@dataclass
class PairState:
    """What the shell keeps between frames: held rows and recently counted positions."""

    held: dict[Any, Held] = field(default_factory=dict)
    done: dict[Any, int] = field(default_factory=dict)  # POS_ID -> when counted (ms)


def _settle(
    state: PairState,
    pos_id: Any,
    final: bool,
    instruments: Instruments,
    received_ts: int,
    parsed: Parsed,
) -> None:
    """Count position `pos_id` if its rows allow (all rows, when `final`), else keep it."""
    held = state.held[pos_id]
    trigger, matches = held.trigger, held.matches
    try:
        if trigger is not None and trigger[11] is not None:
            amount = abs(_number(trigger[5]))
            event = _event(trigger, _number(trigger[11]), amount, instruments, received_ts)
        elif trigger is not None and matches:
            _, price = _weighted_price(matches)
            amount = abs(_number(trigger[5]))
            event = _event(trigger, price, amount, instruments, received_ts)
        elif not final:
            return
        elif matches:  # the trigger never came
            amount, price = _weighted_price(matches)
            event = _event(matches[0], price, amount, instruments, received_ts)
        elif trigger is not None and _positive(
            trigger[6]
        ):  # no execution seen: the entry price, never nothing
            amount = abs(_number(trigger[5]))
            event = _event(trigger, _number(trigger[6]), amount, instruments, received_ts)
        else:
            raise Rejected("trigger_without_price", "no execution row and no entry price")
    except Rejected as exc:
        rows = [trigger, *matches] if trigger is not None else matches
        add_reject(parsed, Rejected(exc.reason, f"{exc.detail} in {item_text(rows)}"))
    except (TypeError, ValueError, IndexError):
        reject(parsed, "malformed_item", [trigger, *matches] if trigger is not None else matches)
    else:
        parsed.events.append(event)
    del state.held[pos_id]
    state.done[pos_id] = received_ts


def pair_rows(
    state: PairState,
    rows: list[Any],
    instruments: Instruments,
    received_ts: int,
    horizon_ms: int,
    parsed: Parsed,
) -> Parsed:
    """Add one frame's rows to `state` (the caller's), count every position whose rows are
    complete and every held position older than `horizon_ms`; see the module docstring."""
    touched: dict[Any, None] = {}  # positions of this frame, in order
    for row in rows:
        if (
            not isinstance(row, list)
            or len(row) < _ROW_LENGTH
            or row[0] != "pos"
            or isinstance(row[8], bool)  # True == 1 in Python: not a row type
            or row[8] not in (_TRIGGER, _MATCH)
            or isinstance(row[1], bool)
            or not isinstance(row[1], int | str)
        ):
            reject(parsed, "malformed_item", row)
            continue
        pos_id = row[1]
        if pos_id in state.done:
            continue  # a late row of a position already counted
        held = state.held.setdefault(pos_id, Held(received_ts))
        if row[8] == _TRIGGER:
            held.trigger = row
        else:
            held.matches.append(row)
        touched.setdefault(pos_id)
    for pos_id in touched:  # after the whole frame: its executions all weigh in
        _settle(state, pos_id, False, instruments, received_ts, parsed)
    for pos_id, held in list(state.held.items()):
        if received_ts - held.first_seen_ms >= horizon_ms:
            _settle(state, pos_id, True, instruments, received_ts, parsed)
    for pos_id, counted_ms in list(state.done.items()):
        if received_ts - counted_ms > DONE_MEMORY_MS:
            del state.done[pos_id]
    return parsed


def _rows(frame: list[Any]) -> list[Any] | None:
    """`[chanId, [[row], ...]]` (snapshot or update), or one bare row `[chanId, [row]]`;
    trailing items (the sequence number and timestamp that Bitfinex's `conf` flags add)
    are ignored."""
    if len(frame) < 2 or not isinstance(frame[1], list):
        return None
    payload = frame[1]
    return [payload] if payload and payload[0] == "pos" else payload


def _frame_rows(text: str, parsed: Parsed) -> list[Any]:
    """The position rows of a frame; other frames yield none (or a reject)."""
    frame = load_frame(text, parsed)
    if frame is None:
        return []
    if isinstance(frame, dict):  # info, subscribed, pong; an error event is dead-lettered
        if frame.get("event") == "error":
            reject(parsed, "venue_error", frame)
        elif "event" not in frame:
            reject(parsed, "unexpected_shape", frame)  # every Bitfinex object is an event
        return []
    if isinstance(frame, list) and len(frame) >= 2 and frame[1] == "hb":
        return []
    rows = _rows(frame) if isinstance(frame, list) else None
    if rows is None:
        reject(parsed, "unexpected_shape", frame)
        return []
    return rows


def parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    """One frame on its own: its rows paired among themselves, nothing held.

    Sample frame:
    [91684,[["pos",145400868,1609144352338,null,"tBTCF0:USTF0",-1.88113008,27113,null,0,1,
     null,27180]]]
    """
    parsed = Parsed()
    rows = _frame_rows(text, parsed)
    return pair_rows(PairState(), rows, instruments, received_ts, 0, parsed)


class Pairing:
    """The shell's stateful parser: one per pipeline, so trigger and execution rows of a
    position that arrive in different frames are paired (see the module docstring)."""

    def __init__(self, horizon_ms: int = PAIRING_HORIZON_MS) -> None:
        self.horizon_ms = horizon_ms
        self.state = PairState()

    def __call__(self, text: str, instruments: Instruments, received_ts: int) -> Parsed:
        parsed = Parsed()
        rows = _frame_rows(text, parsed)
        return pair_rows(self.state, rows, instruments, received_ts, self.horizon_ms, parsed)

    def flush(self, instruments: Instruments, received_ts: int) -> Parsed:
        """Settle every held position now, as after the horizon (at the end of a capture
        read by `normalize`, or when the collector stops)."""
        return pair_rows(self.state, [], instruments, received_ts, 0, Parsed())


def instruments_from_rest(payload: object) -> dict[str, Instrument]:
    """`GET /v2/conf/pub:list:pair:futures`: [["BTCF0:USTF0","ETHF0:USTF0", ...]]."""
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], list):
        raise ValueError(f"unexpected pair list: {str(payload)[:200]}")
    instruments = {}
    for pair in payload[0]:
        instrument = instrument_from_symbol(f"t{pair}")
        if instrument is not None:
            instruments[instrument.symbol] = instrument
    return instruments


FEEDS: tuple[Feed, ...] = (
    Feed(
        name="bitfinex",
        exchange=EXCHANGE,
        url="wss://api-pub.bitfinex.com/ws/2",
        subscribe=subscribe,
        parse=parse,
        idle_timeout_s=60.0,  # the server sends `[chanId,"hb"]` every 15 s
        instruments_url="https://api-pub.bitfinex.com/v2/conf/pub:list:pair:futures",
        instruments_from_rest=instruments_from_rest,
        notes=(
            "one event per liquidated position (trigger and execution rows paired by position"
            " id), at the liquidation or execution price; covers perpetuals and margin"
            " positions quoted in USD or USDt"
        ),
        stateful_parse=Pairing,
    ),
)
