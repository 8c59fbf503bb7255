"""Stored bucket values (the worker's `buckets` table and its changelog), with a format version.

A value is `{"v": 1, "o": offset, "s": {scope_id: [long_micros, short_micros, long_count,
short_count, largest]}}`, `largest` being [notional_usd, ts, id, exchange, symbol, side,
price, quantity] (stream.engine.totals). In memory it is a `BucketValue` of named `ScopeSums`
and `Largest` structs, decoded from the stored JSON in one pass, straight into those types
(then what repeats is shared, as in the live state: see `_shared`).

Values written before the version existed have no `"v"` (version 0, otherwise the same): they
load as they are, so data dirs and changelogs of earlier releases keep working, and are written
back as version 1 the next time their bucket changes. A later format adds a version here and a
migration from the ones before it; a value of a version this release does not know is refused,
not misread.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec.structs import force_setattr

from stream.engine.totals import Largest, ScopeSums

BUCKET_FORMAT = 1
KNOWN_FORMATS = (0, BUCKET_FORMAT)  # 0: no "v", the same layout as 1


class UnknownBucketFormat(ValueError):
    """A bucket value written by a newer release (a downgrade over a newer data dir)."""


class BucketValue(msgspec.Struct, tag_field="v", tag=BUCKET_FORMAT, gc=False):
    """One time bucket: its scopes' sums, and the offset of the last batch applied to it
    (re-applying a redelivered batch is then a no-op per bucket). Encoded, the tag writes
    `"v": 1` first; a value without `"v"` (format 0) decodes as it is.

    `gc=False`: it holds a dict of scope ids to `ScopeSums`, never a reference cycle."""

    offset: int = msgspec.field(name="o")
    scopes: dict[str, ScopeSums] = msgspec.field(name="s")


class _Version(msgspec.Struct):
    """Just the version of a stored value (its other fields ignored)."""

    v: Any = 0


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BucketValue)
_version_decoder = msgspec.json.Decoder(_Version)


def encode_bucket(value: BucketValue) -> bytes:
    """The stored form of an in-memory bucket value (always the current format)."""
    return _encoder.encode(value)


def decode_bucket(stored: bytes | str | Mapping[str, Any]) -> BucketValue:
    """The in-memory bucket value of a stored one, of any known version (a table may hold
    the JSON bytes or, decoded, a mapping). Raises `UnknownBucketFormat` for a version this
    release does not know, msgspec's `DecodeError`/`ValidationError` for a corrupt value."""
    try:
        if isinstance(stored, bytes | str):
            return _shared(_decoder.decode(stored))
        return _shared(msgspec.convert(stored, BucketValue))
    except msgspec.ValidationError:
        version = _version_of(stored)
        if version not in KNOWN_FORMATS:
            raise UnknownBucketFormat(
                f"bucket value of format {version!r}: this release reads formats 0 to "
                f"{BUCKET_FORMAT} (was the data dir written by a newer liqstream?)"
            ) from None
        raise


def _shared(value: BucketValue) -> BucketValue:
    """The value with its repeated parts shared, as the live state has them: one largest order
    for all the scopes it is the largest of (an event counts in four), and one string for
    each scope id, venue, symbol and side. Decoding makes a new object for each of them; for
    a day's state (about two million scope entries) that doubles the memory it holds."""
    intern = sys.intern
    orders: dict[str, Largest] = {}
    scopes: dict[str, ScopeSums] = {}
    for scope_id, entry in value.scopes.items():
        largest = entry.largest
        if largest is not None:
            seen = orders.get(largest.id)
            if seen is not None and seen == largest:
                entry.largest = seen
            else:  # not shared with anyone yet: nobody has hashed or read it
                force_setattr(largest, "exchange", intern(largest.exchange))
                force_setattr(largest, "symbol", intern(largest.symbol))
                force_setattr(largest, "side", intern(largest.side))
                orders[largest.id] = largest
        scopes[intern(scope_id)] = entry
    value.scopes = scopes
    return value


def _version_of(stored: bytes | str | Mapping[str, Any]) -> Any:
    """The "v" of a value that did not decode (0 when it has none or is no object at all)."""
    if not isinstance(stored, bytes | str):
        return stored.get("v", 0)
    try:
        return _version_decoder.decode(stored).v
    except msgspec.ValidationError:  # no JSON object: corrupt, whatever its version
        return 0
