"""Stored bucket values (the worker's `buckets` table and its changelog), with a format version.

A value is `{"v": 1, "o": offset, "s": {scope_id: [long_micro_usd, short_micro_usd,
long_count, short_count, largest]}}` (see stream.engine.aggregation). Values written before the
version existed have no `"v"` (version 0, otherwise the same): they load as they are, so data
dirs and changelogs of earlier releases keep working, and are written back as version 1 the
next time their bucket changes. A later format adds a version here and a migration from the
ones before it; a value of a version this release does not know is refused, not misread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

BUCKET_FORMAT = 1


class UnknownBucketFormat(ValueError):
    """A bucket value written by a newer release (a downgrade over a newer data dir)."""


def encode_bucket(value: Mapping[str, Any]) -> bytes:
    """The stored form of an in-memory bucket value ({"o", "s"})."""
    return orjson.dumps({"v": BUCKET_FORMAT, "o": value["o"], "s": value["s"]})


def decode_bucket(stored: bytes | str | Mapping[str, Any]) -> dict[str, Any]:
    """The in-memory bucket value ({"o", "s"}) of a stored one, of any known version."""
    value = orjson.loads(stored) if isinstance(stored, bytes | str) else dict(stored)
    version = value.pop("v", 0)
    if version not in (0, BUCKET_FORMAT):
        raise UnknownBucketFormat(
            f"bucket value of format {version!r}: this release reads formats 0 to "
            f"{BUCKET_FORMAT} (was the data dir written by a newer liqstream?)"
        )
    return value
