"""Stored bucket values carry a format version; today's unversioned values still load."""

from __future__ import annotations

import orjson
import pytest

from stream.engine.aggregation import Aggregation
from stream.engine.buckets import BUCKET_FORMAT, UnknownBucketFormat, decode_bucket, encode_bucket

# Byte for byte what releases before the version wrote to the table and its changelog.
UNVERSIONED = (
    b'{"o":41,"s":{"*|*":[2500000,1000000,2,1,[2.0,1700000040000,"b2","binance","BTCUSDT",'
    b'"long",40000.0,5.0e-5]],"*|BTC":[2500000,1000000,2,1,[2.0,1700000040000,"b2","binance",'
    b'"BTCUSDT","long",40000.0,5.0e-5]],"binance|*":[2500000,1000000,2,1,[2.0,1700000040000,'
    b'"b2","binance","BTCUSDT","long",40000.0,5.0e-5]],"binance|BTC":[2500000,1000000,2,1,'
    b'[2.0,1700000040000,"b2","binance","BTCUSDT","long",40000.0,5.0e-5]]}}'
)


def test_unversioned_value_loads_and_sums_as_before() -> None:
    value = decode_bucket(UNVERSIONED)
    assert value == orjson.loads(UNVERSIONED)
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
    assert orjson.loads(stored)["v"] == BUCKET_FORMAT == 1
    assert decode_bucket(stored) == value
    assert decode_bucket(orjson.loads(stored)) == value  # a table holding decoded JSON


def test_a_newer_format_is_refused_not_misread() -> None:
    with pytest.raises(UnknownBucketFormat, match="format 2"):
        decode_bucket(b'{"v":2,"o":1,"s":[]}')
