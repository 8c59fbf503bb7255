"""Bodies of the offline and collector commands, kept out of the click layer so they can be
called (and tested) with plain streams."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TextIO

import orjson

from stream.collectors.dedup import RecentIds
from stream.collectors.instruments import InstrumentBook
from stream.collectors.venue import Feed


def normalize_lines(
    feed: Feed,
    lines: Iterable[str],
    out: TextIO,
    err: TextIO,
    *,
    received_ts: int | None = None,
    instruments: InstrumentBook | None = None,
) -> tuple[int, int]:
    """Frames (one per line) to normalized events (JSON lines); rejects to `err` with reasons.

    Returns (events written, rejects). Duplicate ids (replayed snapshots) are written once.
    """
    book = instruments if instruments is not None else InstrumentBook(feed, url="")
    recent = RecentIds()
    written = rejected = 0
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        stamp = received_ts if received_ts is not None else time.time_ns() // 1_000_000
        parsed = feed.parse(text, book, stamp)
        for event in parsed.events:
            if recent.add(event.id):
                out.write(event.to_json().decode() + "\n")
                written += 1
        for reject in parsed.rejects:
            record = {"source": feed.name, "reason": reject.reason, "payload": reject.detail}
            err.write(orjson.dumps(record).decode() + "\n")
            rejected += 1
    return written, rejected
