"""Stored bucket values: a format version, named types in memory, the bytes on disk unchanged.

FORMAT_0 and FORMAT_1 are verbatim what the code before the named types wrote (orjson over the
positional lists) for the three events of `three_events()`: a data dir or a changelog of any
earlier release loads as it is, and is written back byte for byte as before."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.engine.aggregation import Aggregation
from stream.engine.buckets import (
    BUCKET_FORMAT,
    BucketValue,
    UnknownBucketFormat,
    decode_bucket,
    encode_bucket,
)
from stream.engine.totals import Largest, ScopeSums
from stream.schema import make_event

T_MS = 1_700_000_040_000  # the start of bucket 28,333,334 (1-minute buckets)

# Before the version (releases before issue 14): no "v".
FORMAT_0 = (
    b'{"o":7,"s":{"*|*":[2000000,11000375000,1,2,[10000.375,1700000043000,"b2","binance",'
    b'"BTCUSDT","short",40001.5,0.25]],"*|BTC":[2000000,10000375000,1,1,[10000.375,'
    b'1700000043000,"b2","binance","BTCUSDT","short",40001.5,0.25]],"binance|*":[2000000,'
    b'10000375000,1,1,[10000.375,1700000043000,"b2","binance","BTCUSDT","short",40001.5,0.25]],'
    b'"binance|BTC":[2000000,10000375000,1,1,[10000.375,1700000043000,"b2","binance","BTCUSDT",'
    b'"short",40001.5,0.25]],"*|PEPE":[0,1000000000,0,1,[1000.0,1700000042000,"o7","okx",'
    b'"PEPE-USDT-SWAP","short",0.0000123,81300813.0]],"okx|*":[0,1000000000,0,1,[1000.0,'
    b'1700000042000,"o7","okx","PEPE-USDT-SWAP","short",0.0000123,81300813.0]],"okx|PEPE":[0,'
    b'1000000000,0,1,[1000.0,1700000042000,"o7","okx","PEPE-USDT-SWAP","short",0.0000123,'
    b"81300813.0]]}}"
)
# Version 1, as `encode_bucket` wrote it with orjson before the named types.
FORMAT_1 = b'{"v":1,' + FORMAT_0[1:]

# Hand-written in an earlier test (floats spelled otherwise than orjson writes them).
UNVERSIONED = (
    b'{"o":41,"s":{"*|*":[2500000,1000000,2,1,[2.0,1700000040000,"b2","binance","BTCUSDT",'
    b'"long",40000.0,5.0e-5]],"*|BTC":[2500000,1000000,2,1,[2.0,1700000040000,"b2","binance",'
    b'"BTCUSDT","long",40000.0,5.0e-5]],"binance|*":[2500000,1000000,2,1,[2.0,1700000040000,'
    b'"b2","binance","BTCUSDT","long",40000.0,5.0e-5]],"binance|BTC":[2500000,1000000,2,1,'
    b'[2.0,1700000040000,"b2","binance","BTCUSDT","long",40000.0,5.0e-5]]}}'
)


def event(
    id_: str, ts: int, exchange: str, symbol: str, coin: str, side: str, price: float, qty: float
) -> dict[str, Any]:
    return make_event(
        id=id_,
        exchange=exchange,
        symbol=symbol,
        coin=coin,
        quote="USDT",
        contract_type="linear",
        side=side,
        price=price,
        quantity=qty,
        notional_usd=round(price * qty, 6),
        ts=ts,
        received_ts=ts + 50,
    ).to_dict()


def three_events() -> list[dict[str, Any]]:
    return [
        event("b1", T_MS + 100, "binance", "BTCUSDT", "BTC", "long", 40_000.0, 0.00005),
        event("o7", T_MS + 2_000, "okx", "PEPE-USDT-SWAP", "PEPE", "short", 0.0000123, 81300813.0),
        event("b2", T_MS + 3_000, "binance", "BTCUSDT", "BTC", "short", 40_001.5, 0.25),
    ]


B2 = Largest(10_000.375, 1_700_000_043_000, "b2", "binance", "BTCUSDT", "short", 40_001.5, 0.25)
O7 = Largest(
    1_000.0, 1_700_000_042_000, "o7", "okx", "PEPE-USDT-SWAP", "short", 0.0000123, 81300813.0
)


@pytest.mark.parametrize("stored", [FORMAT_0, FORMAT_1], ids=["format0", "format1"])
def test_a_stored_value_decodes_into_the_named_types(stored: bytes) -> None:
    value = decode_bucket(stored)
    assert isinstance(value, BucketValue) and value.offset == 7
    assert list(value.scopes) == [
        "*|*", "*|BTC", "binance|*", "binance|BTC", "*|PEPE", "okx|*", "okx|PEPE",
    ]  # fmt: skip
    market = value.scopes["*|*"]
    # b1: 40,000 x 0.00005 = 2 USD long; o7: 0.0000123 x 81,300,813 = 1,000 USD short;
    # b2: 40,001.5 x 0.25 = 10,000.375 USD short
    assert market.long_micros == 2_000_000
    assert market.short_micros == 11_000_375_000
    assert (market.long_count, market.short_count) == (1, 2)
    assert market.largest == B2
    assert market.largest.notional_usd == 10_000.375 and market.largest.ts == 1_700_000_043_000
    assert (market.largest.id, market.largest.exchange, market.largest.symbol) == (
        "b2",
        "binance",
        "BTCUSDT",
    )
    assert (market.largest.side, market.largest.price, market.largest.quantity) == (
        "short",
        40_001.5,
        0.25,
    )
    assert value.scopes["binance|BTC"] == ScopeSums(2_000_000, 10_000_375_000, 1, 1, B2)
    assert value.scopes["okx|PEPE"] == ScopeSums(0, 1_000_000_000, 0, 1, O7)


@pytest.mark.parametrize("stored", [FORMAT_0, FORMAT_1], ids=["format0", "format1"])
def test_a_stored_value_is_written_back_as_the_same_format_1_bytes(stored: bytes) -> None:
    assert encode_bucket(decode_bucket(stored)) == FORMAT_1
    # a table that holds decoded JSON instead of bytes
    assert encode_bucket(decode_bucket(orjson.loads(stored))) == FORMAT_1


def test_the_aggregation_writes_today_what_it_wrote_before() -> None:
    aggregation = Aggregation({"1m": 60_000, "1h": 3_600_000}, 60_000)
    aggregation.load({}, T_MS + 5_000)
    changed, rejects = aggregation.apply_batch(three_events(), 7, T_MS + 5_000)
    assert rejects == [] and list(changed) == [T_MS // 60_000]
    assert encode_bucket(changed[T_MS // 60_000]) == FORMAT_1
    # loaded back after a restart, it sums the same
    restarted = Aggregation({"1m": 60_000, "1h": 3_600_000}, 60_000)
    restarted.load({T_MS // 60_000: decode_bucket(FORMAT_0)}, T_MS + 5_000)
    assert restarted.snapshot(T_MS + 5_000) == aggregation.snapshot(T_MS + 5_000)


def test_unversioned_value_loads_and_sums_as_before() -> None:
    value = decode_bucket(UNVERSIONED)
    assert value.offset == 41
    assert value.scopes["binance|BTC"].largest == Largest(
        2.0, 1_700_000_040_000, "b2", "binance", "BTCUSDT", "long", 40_000.0, 0.00005
    )
    aggregation = Aggregation({"1m": 60_000}, 60_000)
    bucket = 1_700_000_040_000 // 60_000
    aggregation.load({bucket: value}, 1_700_000_050_000)
    (record,) = [
        r
        for r in aggregation.snapshot(1_700_000_050_000)
        if r["coin"] == "BTC" and r["exchange"] == "binance"
    ]
    assert (record["long_usd"], record["short_usd"], record["count"]) == (2.5, 1.0, 3)
    assert record["largest"]["id"] == "b2"


def test_written_values_carry_the_version_and_read_back() -> None:
    value = decode_bucket(UNVERSIONED)
    stored = encode_bucket(value)
    assert stored.startswith(b'{"v":1,"o":41,"s":{')
    assert orjson.loads(stored)["v"] == BUCKET_FORMAT == 1
    assert decode_bucket(stored) == value
    assert decode_bucket(orjson.loads(stored)) == value  # a table holding decoded JSON


@pytest.mark.parametrize(
    "stored",
    [
        b'{"v":2,"o":1,"s":[]}',  # another layout
        b'{"v":2,"o":1,"s":{}}',  # the same layout, still not ours to read
        b'{"v":"2","o":1,"s":{}}',
        {"v": 2, "o": 1, "s": {}},  # a table holding decoded JSON
    ],
)
def test_a_newer_format_is_refused_not_misread(stored: Any) -> None:
    with pytest.raises(UnknownBucketFormat, match=r"format '?2'?"):
        decode_bucket(stored)


@pytest.mark.parametrize(
    "stored",
    [
        b'{"v":1,"o":1,"s":{"*|*":[1,2,3]}}',  # an entry too short
        b'{"o":1,"s":{"*|*":[1,2,3,4,[1.0,2,"id"]]}}',  # a largest order too short
        b"[1,2]",
    ],
)
def test_a_corrupt_value_of_a_known_format_is_a_validation_error(stored: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_bucket(stored)


def test_a_truncated_value_is_a_decode_error() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_bucket(FORMAT_1[:-3])


def test_largest_is_immutable_and_sums_are_not() -> None:
    value = decode_bucket(FORMAT_1)
    entry = value.scopes["*|*"]
    with pytest.raises(AttributeError):
        entry.largest.notional_usd = 1.0  # type: ignore[misc, union-attr]
    entry.long_count += 1
    value.offset = -1
    assert encode_bucket(value).startswith(b'{"v":1,"o":-1,"s":{"*|*":[2000000,11000375000,2,2,')


def test_floats_orjson_wrote_with_an_exponent_sign_read_back_the_same() -> None:
    """orjson wrote 2e+16 where msgspec writes 2e16 (from 1e16 up: no notional, price or
    quantity the schema accepts today reaches that); both read back as the same float."""
    orjson_bytes = b'{"v":1,"o":3,"s":{"*|*":[1,0,1,0,[2e+16,5,"x","okx","X","long",1.0,2e+16]]}}'
    value = decode_bucket(orjson_bytes)
    assert value.scopes["*|*"].largest == Largest(2e16, 5, "x", "okx", "X", "long", 1.0, 2e16)
    assert decode_bucket(encode_bucket(value)) == value


finite = st.floats(min_value=1e-12, max_value=1e15, allow_nan=False, allow_infinity=False)
largest_orders = st.builds(
    Largest,
    finite,
    st.integers(0, 2**53),
    st.text(max_size=12),
    st.sampled_from(["binance", "okx", "bybit"]),
    st.text(min_size=1, max_size=12),
    st.sampled_from(["long", "short"]),
    finite,
    finite,
)
entries = st.builds(
    ScopeSums,
    st.integers(0, 2**62),
    st.integers(0, 2**62),
    st.integers(0, 2**31),
    st.integers(0, 2**31),
    largest_orders,
)


@settings(max_examples=200)
@given(offset=st.integers(-1, 2**62), scopes=st.dictionaries(st.text(max_size=20), entries))
def test_encoded_values_keep_the_positional_layout(offset: int, scopes: dict) -> None:
    """The layout orjson wrote from the positional lists, field for field, for any value."""
    value = BucketValue(offset, scopes)
    positional = {
        "v": 1,
        "o": offset,
        "s": {
            scope_id: [
                e.long_micros,
                e.short_micros,
                e.long_count,
                e.short_count,
                [
                    e.largest.notional_usd,
                    e.largest.ts,
                    e.largest.id,
                    e.largest.exchange,
                    e.largest.symbol,
                    e.largest.side,
                    e.largest.price,
                    e.largest.quantity,
                ],
            ]
            for scope_id, e in scopes.items()
        },
    }
    stored = encode_bucket(value)
    assert stored == orjson.dumps(positional)
    assert decode_bucket(stored) == value


def test_decoded_values_share_what_the_live_state_shares() -> None:
    """An event counts in four scopes, which hold one largest order between them when live;
    decoded, they hold one again (and one string per venue, symbol, side and scope id)."""
    value = decode_bucket(FORMAT_1)
    btc = [value.scopes[s].largest for s in ("*|*", "*|BTC", "binance|*", "binance|BTC")]
    assert all(order is btc[0] for order in btc) and btc[0] == B2
    pepe = [value.scopes[s].largest for s in ("*|PEPE", "okx|*", "okx|PEPE")]
    assert all(order is pepe[0] for order in pepe) and pepe[0] == O7
    other = decode_bucket(FORMAT_0)
    assert other.scopes["*|*"].largest.symbol is btc[0].symbol  # type: ignore[union-attr]
    assert next(iter(other.scopes)) is next(iter(value.scopes))


def test_orders_of_two_venues_with_one_id_are_not_mixed_up() -> None:
    stored = (
        b'{"v":1,"o":3,"s":{"okx|*":[1,0,1,0,[1.0,5,"7","okx","A","long",1.0,1.0]],'
        b'"bybit|*":[2,0,1,0,[2.0,6,"7","bybit","B","long",2.0,1.0]],'
        b'"*|*":[3,0,2,0,[2.0,6,"7","bybit","B","long",2.0,1.0]]}}'
    )
    value = decode_bucket(stored)
    assert value.scopes["okx|*"].largest == Largest(1.0, 5, "7", "okx", "A", "long", 1.0, 1.0)
    assert value.scopes["bybit|*"].largest is value.scopes["*|*"].largest
    assert value.scopes["*|*"].largest == Largest(2.0, 6, "7", "bybit", "B", "long", 2.0, 1.0)
    assert encode_bucket(value) == stored
