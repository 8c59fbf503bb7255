"""Bodies of the offline and collector commands, kept out of the click layer so they can be
called (and tested) with plain streams."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TextIO

import orjson

from stream.collectors.dedup import RecentIds
from stream.collectors.instruments import InstrumentBook
from stream.collectors.parsing import printable
from stream.collectors.venue import Feed, Flushes, Parsed
from stream.config import Settings
from stream.engine.aggregation import Aggregation
from stream.engine.dedup import SeenIds
from stream.engine.evaluator import RuleEvaluator
from stream.engine.history import bucket_records
from stream.engine.rules import RuleSet
from stream.errors import Rejected
from stream.schema import event_from_json
from stream.view.history import HistoryStore


def normalize_lines(
    feed: Feed,
    lines: Iterable[str | bytes],
    out: TextIO,
    err: TextIO,
    *,
    received_ts: int | None = None,
    instruments: InstrumentBook | None = None,
) -> tuple[int, int]:
    """Frames (one per line) to normalized events (JSON lines); rejects to `err` with reasons.

    Returns (events written, rejects). Duplicate ids (replayed snapshots) are written once.
    Lines are split at `\\n` only (give bytes, e.g. `sys.stdin.buffer`): a line that is not
    UTF-8, or that holds control characters such as `\\x1c`, is a reject naming its line
    number, never skipped as blank. A frame yields at most `MAX_REJECTS_PER_FRAME` rejects plus
    one summary.
    """
    book = instruments if instruments is not None else InstrumentBook(feed, url="")
    # One parser for the whole input, as the collector keeps one per feed: a stateful one
    # (Bitfinex pairs a trigger row with the execution row of an earlier frame) sees every line.
    parse = feed.stateful_parse() if feed.stateful_parse else feed.parse
    recent = RecentIds()
    written = rejected = 0

    def write_reject(number: int, reason: str, payload: str) -> None:
        nonlocal rejected
        record = {"source": feed.name, "line": number, "reason": reason, "payload": payload}
        err.write(orjson.dumps(record).decode() + "\n")
        rejected += 1

    def write_parsed(number: int, parsed: Parsed) -> None:
        nonlocal written
        for event in parsed.events:
            if recent.add(event.id):
                out.write(event.to_json().decode() + "\n")
                written += 1
        for reject in parsed.rejects:
            write_reject(number, reject.reason, printable(reject.detail))

    number = 0
    last_stamp = received_ts if received_ts is not None else time.time_ns() // 1_000_000
    for number, line in enumerate(lines, start=1):
        text, problem = _line_text(line)
        if problem is not None:
            write_reject(number, problem, text)
            continue
        if not text.strip(_JSON_WHITESPACE):
            continue
        stamp = received_ts if received_ts is not None else time.time_ns() // 1_000_000
        write_parsed(number, parse(text, book, stamp))
        last_stamp = stamp
    if isinstance(parse, Flushes):  # the end of the capture settles what the parser holds
        write_parsed(number, parse.flush(book, last_stamp))
    return written, rejected


_JSON_WHITESPACE = " \t\r\n"  # what JSON allows between tokens; nothing else is blank
_MAX_PAYLOAD_CHARS = 4_000


def _line_text(line: str | bytes) -> tuple[str, str | None]:
    """A line's text without its line break, and the reason it cannot be a frame (or None).

    Bytes that are not UTF-8 (or the lone surrogates Python's surrogateescape makes of them)
    are `invalid_utf8`; the payload shows them as backslash escapes. Every other line goes to
    the parser, which rejects control characters as invalid JSON."""
    if isinstance(line, bytes):
        raw = line.rstrip(b"\r\n")
        try:
            return raw.decode(), None
        except UnicodeDecodeError:
            return raw.decode("utf-8", "backslashreplace")[:_MAX_PAYLOAD_CHARS], "invalid_utf8"
    text = line.rstrip("\r\n")
    try:
        text.encode()
    except UnicodeEncodeError:
        return printable(text)[:_MAX_PAYLOAD_CHARS], "invalid_utf8"
    return text, None


def report_lines(
    lines: Iterable[bytes | str], out: TextIO, err: TextIO, settings: Settings, at_ms: int | None
) -> dict:
    """`liqstream report`: the worker's own aggregation, run once over stdin's events."""
    events = list(_events(lines, err, settings.resolution_ms))
    report, rejects = build_report(events, at_ms, settings.windows_ms, settings.resolution_ms)
    for event, reason in rejects:
        err.write(orjson.dumps({"id": event["id"], "reason": reason}).decode() + "\n")
    out.write(orjson.dumps(report).decode() + "\n")
    return report


def series_lines(
    lines: Iterable[bytes | str],
    out: TextIO,
    err: TextIO,
    settings: Settings,
    params: dict[str, str],
) -> dict:
    """`liqstream report --series`: /api/history's answer (same `params`) over stdin's events,
    built as the worker builds the history records and the view sums them. `from` and `to`
    default to the events' span. Raises BadRequest for parameters /api/history refuses."""
    events = list(_events(lines, err, settings.resolution_ms))
    store = build_series(events, settings.resolution_ms)
    params = dict(params)
    if events:
        params.setdefault("from", str(min(e["ts"] for e in events)))
        params.setdefault("to", str(max(e["ts"] for e in events) + 1))
    now = int(params["to"]) if "to" in params else time.time_ns() // 1_000_000
    answer = store.query(params, now)
    out.write(orjson.dumps(answer).decode() + "\n")
    return answer


def build_series(events: list[dict], resolution_ms: int) -> HistoryStore:
    """Every bucket of `events` as history records, in a store that folds nothing."""
    store = HistoryStore(resolution_ms, None, None)
    if not events:
        return store
    first, last = min(e["ts"] for e in events), max(e["ts"] for e in events)
    span_ms = (last // resolution_ms - first // resolution_ms + 2) * resolution_ms
    aggregation = Aggregation({"span": span_ms}, resolution_ms)  # no event is too late
    aggregation.load({}, last)
    aggregation.apply_batch(events, 0, last)
    for bucket in sorted(aggregation.buckets):
        for _, record in bucket_records(bucket, aggregation.buckets[bucket], resolution_ms):
            store.add(record, last)
    return store


def build_report(
    events: list[dict], at_ms: int | None, windows_ms: dict[str, int], resolution_ms: int
) -> tuple[dict, list[tuple[dict, str]]]:
    """{"as_of", "totals"} at `at_ms` (default: the latest event's ts), plus rejects."""
    as_of = at_ms if at_ms is not None else max((e["ts"] for e in events), default=0)
    aggregation = Aggregation(windows_ms, resolution_ms)
    aggregation.load({}, as_of)
    _, rejects = aggregation.apply_batch(events, 0, as_of)
    return {"as_of": as_of, "totals": aggregation.snapshot(as_of)}, rejects


def detect_lines(
    lines: Iterable[bytes | str], out: TextIO, err: TextIO, settings: Settings, rules: RuleSet
) -> int:
    """`liqstream detect`: the worker's rule evaluator over stdin's events (in time order);
    returns the number of records written. The clock is the latest event time seen."""
    events = _events(lines, err, settings.resolution_ms)
    detector = Detector(rules, settings.windows_ms, settings.resolution_ms)
    written = 0
    for event in events:
        for record in detector.add(event, err):
            out.write(orjson.dumps(record).decode() + "\n")
            written += 1
    return written


class Detector:
    """One event at a time through the aggregation and the rules, on event time."""

    def __init__(self, rules: RuleSet, windows_ms: dict[str, int], resolution_ms: int) -> None:
        self.aggregation = Aggregation(windows_ms, resolution_ms)
        self.evaluator = RuleEvaluator(rules, self.aggregation)
        self.sequence = 0

    def add(self, event: dict, err: TextIO | None = None) -> list[dict]:
        clock = max(event["ts"], self.evaluator.clock or event["ts"])
        self.evaluator.advance(clock)
        self.sequence += 1
        _, rejects = self.aggregation.apply_batch(
            [event], self.sequence, clock, after_each=self.evaluator.after_event
        )
        if err is not None:
            for rejected, reason in rejects:
                err.write(orjson.dumps({"id": rejected["id"], "reason": reason}).decode() + "\n")
        return self.evaluator.drain()


def _events(lines: Iterable[bytes | str], err: TextIO, resolution_ms: int) -> Iterable[dict]:
    """Valid events, each once as the worker counts it (an id its venue sent before, at any
    time within the horizon, is a repeat); invalid and repeated lines are named on `err`.

    Lines are best bytes (stdin's buffer): invalid UTF-8 is then a reject like any bad line,
    not a decoding error that ends the run. Blank means JSON whitespace only: a line of
    control characters is a reject, not skipped."""
    seen = SeenIds(resolution_ms, horizon_ms=0)  # offline: nothing expires
    for number, line in enumerate(lines, start=1):
        raw = line.encode(errors="surrogateescape") if isinstance(line, str) else line
        if not raw.strip(b" \t\r\n"):
            continue
        try:
            event = event_from_json(raw)
        except Rejected as exc:
            record = {"line": number, "reason": exc.reason, "detail": exc.detail}
            err.write(orjson.dumps(record).decode() + "\n")
            continue
        if not seen.add(event.exchange, event.id, event.ts):
            record = {"line": number, "reason": "duplicate", "detail": f"id {event.id}"}
            err.write(orjson.dumps(record).decode() + "\n")
            continue
        yield event.to_dict()
