"""Every validation rule of the normalized event (docs/events.md, "The normalized event")."""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stream.collectors.parsing import add_sized_event
from stream.collectors.venue import Instrument, Parsed
from stream.errors import Rejected
from stream.schema import (
    FIELDS,
    MAX_NOTIONAL_USD,
    MAX_PRICE,
    MAX_QUANTITY,
    MIN_PRICE,
    canonical_dicts,
    decode_canonical,
    event_from_dict,
    event_from_json,
    event_id,
    make_event,
)
from stream.symbols import canonical_coin

VALID = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "coin": "BTC",
    "quote": "USDT",
    "contract_type": "linear",
    "side": "long",
    "price": 104130.5,
    "quantity": 459.7,
    "notional_usd": 104130.5 * 459.7,
    "ts": 1762290000000,
    "received_ts": 1762290000123,
}


def test_valid_event_keeps_every_field() -> None:
    event = make_event(**VALID, id="abc")
    assert event.to_dict() == {**VALID, "id": "abc"}
    assert list(event.to_dict()) == list(FIELDS)


def test_id_is_a_deterministic_hash_when_the_venue_gives_none() -> None:
    first = make_event(**VALID)
    again = make_event(**VALID)
    assert (
        first.id
        == again.id
        == event_id("binance", "BTCUSDT", 1762290000000, "long", 104130.5, 459.7)
    )
    assert make_event(**{**VALID, "side": "short"}).id != first.id


def test_numbers_given_as_strings_are_accepted() -> None:
    event = make_event(**{**VALID, "price": "9910", "quantity": "0.014", "notional_usd": "138.74"})
    assert (event.price, event.quantity, event.notional_usd) == (9910.0, 0.014, 138.74)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("exchange", "nasdaq", "unknown_exchange"),
        ("exchange", "Binance", "unknown_exchange"),
        ("symbol", "", "symbol_missing"),
        ("symbol", None, "symbol_missing"),
        ("coin", "btc", "coin_not_upper_case"),
        ("coin", "", "coin_missing"),
        ("quote", "", "quote_missing"),
        ("contract_type", "quanto", "contract_type_invalid"),
        ("side", "buy", "side_invalid"),
        ("side", "Long", "side_invalid"),
        ("price", 0, "price_not_positive"),
        ("price", -1.5, "price_not_positive"),
        ("price", math.nan, "price_not_finite"),
        ("price", "NaN", "price_not_finite"),
        ("price", math.inf, "price_not_finite"),
        ("price", "abc", "price_not_a_number"),
        ("price", None, "price_not_a_number"),
        ("quantity", 0.0, "quantity_not_positive"),
        ("quantity", "-3", "quantity_not_positive"),
        ("quantity", math.nan, "quantity_not_finite"),
        ("notional_usd", -0.01, "notional_usd_not_positive"),
        ("notional_usd", math.inf, "notional_usd_not_finite"),
        ("ts", "1762290000000", "ts_invalid"),
        ("ts", True, "ts_invalid"),
        ("ts", math.nan, "ts_invalid"),
        ("ts", 1762290000, "ts_out_of_range"),  # seconds, not ms
        ("ts", 1762290000000000, "ts_out_of_range"),  # microseconds
        ("received_ts", None, "received_ts_invalid"),
        # booleans are not numbers (float(True) is 1.0)
        ("price", True, "price_not_a_number"),
        ("quantity", False, "quantity_not_a_number"),
        ("notional_usd", True, "notional_usd_not_a_number"),
        ("price", [1.0], "price_not_a_number"),
        ("price", {"v": 1}, "price_not_a_number"),
        ("price", 10**400, "price_not_a_number"),  # an int no float holds
        ("price", "1e999", "price_not_finite"),
        # plausibility: sizes no real liquidation reaches
        ("price", 1.7976931348623157e308, "price_implausible"),
        ("price", 1e-13, "price_implausible"),
        ("quantity", 1e19, "quantity_implausible"),
        ("notional_usd", 1.7976931348623157e308, "notional_usd_implausible"),
        ("notional_usd", 1.5, "notional_usd_inconsistent"),  # against 47.9M
        ("notional_usd", 104130.5 * 459.7 * 1.011, "notional_usd_inconsistent"),
    ],
)
def test_invalid_fields_are_rejected_with_a_reason(field: str, value: object, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        make_event(**{**VALID, field: value})
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    ("price", "quantity", "notional_usd"),
    [
        (MIN_PRICE, 1e6, MIN_PRICE * 1e6 + 0.01),  # the smallest price, a cent of rounding
        (4.2e-6, 2.4e9, 10_080.0),  # PEPE-like: a price of a few millionths, billions of coins
        (2.1e-9, MAX_QUANTITY, 2.1e9),  # the most coins, at a price the smallest coins reach
        (MAX_PRICE, 100.0, MAX_NOTIONAL_USD),  # the highest price and notional
        (104130.5, 459.7, 104130.5 * 459.7 * 1.009),  # within 1 %: rounding
        (0.0001, 3.0, 0.01),  # amounts of a cent: within a cent
    ],
)
def test_plausible_extremes_are_accepted(
    price: float, quantity: float, notional_usd: float
) -> None:
    event = make_event(
        **{**VALID, "price": price, "quantity": quantity, "notional_usd": notional_usd}
    )
    assert (event.price, event.quantity, event.notional_usd) == (price, quantity, notional_usd)
    assert decode_canonical(event.to_json()) is not None


def test_the_poison_pill_of_issue_15_is_rejected() -> None:
    """A BitMEX frame with leavesQty 1.7976931348623157e308 sized to an event whose notional
    no worker can sum in micro-dollars."""
    parsed = Parsed()
    xbtusd = Instrument("XBTUSD", "BTC", "USD", "inverse", 1.0)
    add_sized_event(
        parsed,
        {"leavesQty": 1.7976931348623157e308},
        exchange="bitmex",
        instrument=xbtusd,
        side="long",
        size=1.7976931348623157e308,
        quoted_price=104130.5,
        ts=1762290000000,
        received_ts=1762290000123,
    )
    assert parsed.events == []
    assert [r.reason for r in parsed.rejects] == ["notional_usd_implausible"]


@given(
    contract_type=st.sampled_from(["linear", "inverse"]),
    contract_size=st.sampled_from([0.0001, 0.01, 1.0, 10.0, 100.0]),
    units=st.sampled_from([1, 1000, 1_000_000]),
    size=st.floats(min_value=1e-3, max_value=1e6),
    quoted_price=st.floats(min_value=1e-6, max_value=2e5),
)
def test_every_contract_type_sizes_consistent_events(
    contract_type: str, contract_size: float, units: int, size: float, quoted_price: float
) -> None:
    """Whatever a venue sizes through `add_sized_event` (inverse: contracts x face value, then
    quantity = notional / price; linear: coins x price) passes the notional check, or fails
    only on a bound."""
    parsed = Parsed()
    instrument = Instrument("X", "X", "USD", contract_type, contract_size, units)
    add_sized_event(
        parsed,
        {},
        exchange="okx",
        instrument=instrument,
        side="short",
        size=size,
        quoted_price=quoted_price,
        ts=1762290000000,
        received_ts=1762290000123,
    )
    reasons = {r.reason for r in parsed.rejects}
    assert reasons <= {"price_implausible", "quantity_implausible", "notional_usd_implausible"}
    for event in parsed.events:
        assert event.price * event.quantity == pytest.approx(event.notional_usd, rel=1e-9)


def test_empty_id_is_rejected() -> None:
    with pytest.raises(Rejected) as caught:
        make_event(**VALID, id="")
    assert caught.value.reason == "id_missing"


def test_json_round_trip_is_exact() -> None:
    event = make_event(**VALID)
    assert event_from_json(event.to_json()) == event
    assert orjson.loads(event.to_json())["notional_usd"] == VALID["notional_usd"]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (
            orjson.dumps({k: v for k, v in VALID.items() if k != "side"} | {"id": "x"}),
            "field_missing",
        ),
    ],
)
def test_bad_records_are_rejected(raw: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        event_from_json(raw)
    assert caught.value.reason == reason


def test_missing_fields_are_named() -> None:
    with pytest.raises(Rejected, match="missing side, ts"):
        event_from_dict({k: v for k, v in VALID.items() if k not in ("side", "ts")} | {"id": "x"})


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("BTC", ("BTC", 1)),
        ("XBT", ("BTC", 1)),
        ("1000PEPE", ("PEPE", 1000)),
        ("1000000MOG", ("MOG", 1000000)),
        ("10000LADYS", ("LADYS", 10000)),
        ("kPEPE", ("PEPE", 1000)),
        ("1INCH", ("1INCH", 1)),  # a real coin name, not a multiplier
        ("eth", ("ETH", 1)),
    ],
)
def test_canonical_coin(base: str, expected: tuple[str, int]) -> None:
    assert canonical_coin(base) == expected


def test_decode_canonical_takes_only_canonical_events() -> None:
    canonical = make_event(**VALID).to_dict()
    assert decode_canonical(orjson.dumps(canonical)) is not None
    for field, value in [
        ("price", "104130.5"),  # valid, but not canonical
        ("price", math.nan),
        ("price", -1.0),
        ("price", 0),
        ("price", True),
        ("quantity", math.inf),
        ("ts", 1762290000.5),
        ("ts", 1762290000000.0),
        ("ts", 12),
        ("side", "buy"),
        ("coin", "btc"),
        ("id", ""),
        ("id", 7),
        ("exchange", "nasdaq"),
        ("symbol", None),
    ]:
        raw = json.dumps({**canonical, field: value}).encode()  # NaN, Infinity as Python writes
        assert decode_canonical(raw) is None, field
    assert decode_canonical(json.dumps(canonical).replace("104130.5", "1e999").encode()) is None
    assert (
        decode_canonical(orjson.dumps({k: v for k, v in canonical.items() if k != "side"})) is None
    )
    assert decode_canonical(orjson.dumps({**canonical, "extra": 1})) is None
    assert decode_canonical(b"[1, 2]") is None
    assert decode_canonical(b'{"id": ') is None


_ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)


@given(
    changes=st.dictionaries(
        st.sampled_from([*FIELDS, "extra"]),
        st.one_of(_ANY_JSON, st.sampled_from(["btc", "BTC", "long", "short", "inverse", "okx"])),
        max_size=3,
    ),
    drop=st.sets(st.sampled_from(FIELDS), max_size=1),
)
def test_what_decode_canonical_takes_validates_to_itself(
    changes: dict[str, Any], drop: set[str]
) -> None:
    """The first stage passes the bytes of a canonical event on unchanged: so whatever the fast
    check takes must be valid, and its normal form must be exactly what was sent."""
    data = {k: v for k, v in {**make_event(**VALID).to_dict(), **changes}.items() if k not in drop}
    raw = json.dumps(data).encode()
    fast = decode_canonical(raw)
    if fast is None:
        return
    event = event_from_json(raw)
    as_read = {
        k: float(v) if k in ("price", "quantity", "notional_usd") else v for k, v in data.items()
    }
    assert event.to_dict() == as_read  # JSON integers are read as floats, as by every consumer
    assert (fast.exchange, fast.id, fast.ts) == (event.exchange, event.id, event.ts)


def test_ci_runs_property_tests_without_a_deadline() -> None:
    """A loaded CI machine is slow, not wrong: the CI profile (tests/conftest.py) drops
    Hypothesis' per-example deadline and relaxes nothing else."""
    from hypothesis import settings

    ci, default = settings.get_profile("ci"), settings.get_profile("default")
    assert ci.deadline is None
    assert ci.max_examples == default.max_examples
    assert ci.suppress_health_check == default.suppress_health_check == ()
    assert not ci.derandomize


_NESTED_JSON = st.recursive(
    _ANY_JSON,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


@given(
    changes=st.dictionaries(st.sampled_from(FIELDS), _NESTED_JSON, max_size=4),
    item=_NESTED_JSON,
)
def test_any_json_in_any_field_is_an_event_or_a_reject(changes: dict[str, Any], item: Any) -> None:
    """Whatever another producer writes, validation answers with an event or a reason, never
    an exception (a list where a string belongs is unhashable, `true` is not 1.0)."""
    data = {**make_event(**VALID).to_dict(), **changes}
    with contextlib.suppress(Rejected):
        event_from_dict(data)
    events, rejects = canonical_dicts([data, item, make_event(**VALID).to_dict()])
    assert len(events) + len(rejects) == 3
    for event in events:  # what the worker sums: canonical, plausible
        assert decode_canonical(orjson.dumps(event)) is not None
