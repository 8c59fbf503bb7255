"""Small helpers shared by the venue parsers, so that each venue file holds only its rules."""

from __future__ import annotations

from typing import Any

import orjson

from stream.collectors.venue import UNKNOWN_SYMBOL, Instrument, Instruments, Parsed
from stream.errors import Rejected

MAX_FRAME_CHARS = 1_000_000  # far above any venue's largest legitimate frame


def load_frame(text: str, parsed: Parsed) -> Any | None:
    """Decode a frame's JSON, or record a reject in `parsed` and return None."""
    if len(text) > MAX_FRAME_CHARS:
        parsed.rejects.append(Rejected("oversized_frame", f"{len(text)} chars: {text[:200]}"))
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        parsed.rejects.append(Rejected("invalid_json", f"{exc}: {text[:1000]}"))
        return None


def item_text(item: Any) -> str:
    """The raw text of one frame item, for the dead-letter record."""
    try:
        return orjson.dumps(item).decode()
    except TypeError:
        return repr(item)


def reject(parsed: Parsed, reason: str, item: Any) -> None:
    parsed.rejects.append(Rejected(reason, item_text(item)))


def lookup(instruments: Instruments, symbol: str, parsed: Parsed, item: Any) -> Instrument | None:
    """The instrument for `symbol`, or an `unknown_symbol` reject (the shell refreshes once)."""
    instrument = instruments.get(symbol)
    if instrument is None:
        reject(parsed, UNKNOWN_SYMBOL, item)
    return instrument
