"""Every validation rule of the normalized event (design.md section 1)."""

from __future__ import annotations

import math

import orjson
import pytest

from stream.errors import Rejected
from stream.schema import FIELDS, event_from_dict, event_from_json, event_id, make_event
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
    ],
)
def test_invalid_fields_are_rejected_with_a_reason(field: str, value: object, reason: str) -> None:
    with pytest.raises(Rejected) as caught:
        make_event(**{**VALID, field: value})
    assert caught.value.reason == reason


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


def test_is_canonical_agrees_with_validation() -> None:
    from stream.schema import is_canonical

    canonical = make_event(**VALID).to_dict()
    assert is_canonical(canonical)
    for field, value in [
        ("price", "104130.5"),  # valid, but not canonical
        ("price", math.nan),
        ("price", -1.0),
        ("quantity", math.inf),
        ("ts", 1762290000.5),
        ("side", "buy"),
        ("coin", "btc"),
        ("id", ""),
        ("exchange", "nasdaq"),
    ]:
        assert not is_canonical({**canonical, field: value}), field
    assert not is_canonical({k: v for k, v in canonical.items() if k != "side"})
    assert not is_canonical({**canonical, "extra": 1})


def test_faust_record_mirrors_the_schema() -> None:
    from stream.models import LiquidationRecord

    assert tuple(LiquidationRecord._options.fields) == FIELDS
    event = make_event(**VALID, id="abc")
    record = LiquidationRecord.loads(event.to_json(), serializer="json")
    assert record.asdict() == event.to_dict()
    assert orjson.loads(record.dumps()) == event.to_dict()
