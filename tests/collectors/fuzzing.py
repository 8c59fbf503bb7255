"""Poison frames for every feed: mutations of the venues' own frames, as an attacker or a broken
venue would send them, and a runner that checks the parsers and `normalize_lines` survive them.

Run `make fuzz` (100,000 frames) or `python -m tests.collectors.fuzzing --frames N --seed S`.
It prints the number of frames, events, rejects, quiet frames (acks and heartbeats), tracebacks
and lost lines, and exits 1 unless tracebacks and lost lines are both 0.
`tests/collectors/test_fuzz.py` runs the same checks on a bounded count in the normal suite.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream.collectors.instruments import InstrumentBook
from stream.collectors.parsing import MAX_REJECTS_PER_FRAME
from stream.collectors.registry import FEEDS
from stream.collectors.venue import Feed, Parsed, Parser
from stream.commands import normalize_lines
from stream.simulators import simulator_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"
RECEIVED_TS = 1_800_000_000_000
DEEP = 100_000  # nesting far beyond any recursion limit

# Values no field of any venue expects all of: wrong types, huge and non-finite numbers,
# strings that look like numbers, control characters, surrogate escapes (JSON text, so that
# a lone surrogate can be written at all).
POISON_JSON: tuple[str, ...] = (
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1",
    "1.7976931348623157e308",
    "-1.7976931348623157e308",
    "5e-324",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    '""',
    '" "',
    '"nan"',
    '"NaN"',
    '"inf"',
    '"-Infinity"',
    '"1e308"',
    '"1e309"',
    '"-0"',
    '"0x10"',
    '"1_000"',
    '"\\u0000"',
    '"\\u001c\\u001d"',
    '"\\ud800"',
    '"\\udc80x"',
    '"\\u2028"',
    "[]",
    "{}",
    "[null]",
    '{"a":1}',
    "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]",
    "[" * 200 + "]" * 200,
    '"' + "A" * 5000 + '"',
)


def _frames_of(venue: str) -> list[str]:
    """Every single-frame fixture of a venue (REST payloads are not frames)."""
    folder = FIXTURES / venue
    frames = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and not path.name.startswith("rest_"):
            text = path.read_text().strip()
            if text:
                frames.append(text)
    return frames


def _rendered(feed: Feed, book: InstrumentBook) -> list[str]:
    """A few frames the venue's simulator renders, one per kind of instrument."""
    render = simulator_for(feed).render
    frames = []
    seen_types = set()
    for symbol in book.symbols():
        instrument = book[symbol]
        kind = (instrument.contract_type, instrument.units > 1)
        if kind in seen_types:
            continue
        seen_types.add(kind)
        for side in ("long", "short"):
            frames.append(render(instrument, side, 100.0, 2.0, RECEIVED_TS - 5_000, 7))
    return frames


@dataclass
class Corpus:
    """The seed frames of one feed and the instruments it parses them with."""

    feed: Feed
    book: InstrumentBook
    seeds: list[str]
    data_seeds: list[str]  # the seeds that give at least one event unmutated


def corpus(feed: Feed) -> Corpus:
    book = InstrumentBook(feed, url="")
    seeds = _frames_of(feed.exchange) + _rendered(feed, book)
    data_seeds = [seed for seed in seeds if feed.parse(seed, book, RECEIVED_TS).events]
    return Corpus(feed, book, seeds, data_seeds)


# ---- structural mutations (on decoded JSON, re-encoded as text) ----


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def replace_at(value: Any, path: tuple[Any, ...], replacement: str) -> str:
    """`value` as JSON text with the node at `path` replaced by the JSON text `replacement`."""
    marker = "\x00liqstream-fuzz\x00"
    if not path:
        return replacement
    copy = orjson.loads(orjson.dumps(value))
    node = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = marker
    return orjson.dumps(copy).decode().replace(orjson.dumps(marker).decode(), replacement, 1)


def wrong_type(frame: Any, rng: random.Random) -> str:
    """One field (at any depth, the whole frame included) given a poison value."""
    path = rng.choice(list(paths(frame)))
    return replace_at(frame, path, rng.choice(POISON_JSON))


def deep_nesting(frame: Any, rng: random.Random) -> str:
    path = rng.choice(list(paths(frame)))
    depth = rng.choice((200, 1_000, DEEP))
    opener, closer = rng.choice((("[", "]"), ('{"a":', "}")))
    return replace_at(frame, path, opener * depth + "1" + closer * depth)


def drop_key(frame: Any, rng: random.Random) -> str:
    keyed = [p for p in paths(frame) if p]
    if not keyed:
        return orjson.dumps(frame).decode()
    path = rng.choice(keyed)
    copy = orjson.loads(orjson.dumps(frame))
    node = copy
    for step in path[:-1]:
        node = node[step]
    del node[path[-1]]
    return orjson.dumps(copy).decode()


def multiply_items(frame: Any, rng: random.Random) -> str:
    """The first list in the frame repeated many times, with every copy broken: a flood."""
    for path in paths(frame):
        node = frame
        for step in path:
            node = node[step]
        if isinstance(node, list) and node:
            count = rng.choice((100, 2_000, 20_000))
            items = ",".join(rng.choice(('{"x":1}', "null", "[1]", '"x"')) for _ in range(count))
            return replace_at(frame, path, "[" + items + "]")
    return orjson.dumps(frame).decode()


STRUCTURAL: tuple[Callable[[Any, random.Random], str], ...] = (
    wrong_type,
    wrong_type,
    wrong_type,
    deep_nesting,
    drop_key,
    multiply_items,
)

# ---- byte-level mutations (on the frame's UTF-8 bytes) ----

_NASTY_BYTES = (b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\x1c", b"\x1d", b"\x85", b"\r", b"\\")


def byte_flip(data: bytes, rng: random.Random) -> bytes:
    mutable = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if mutable:
            mutable[rng.randrange(len(mutable))] ^= 1 << rng.randrange(8)
    return bytes(mutable)


def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + rng.choice(_NASTY_BYTES) + data[at:]


def numbers_huge(data: bytes, rng: random.Random) -> bytes:
    """Every run of digits after one point replaced by a huge or non-finite spelling."""
    text = data.decode("utf-8", "surrogateescape")
    digits = [i for i, char in enumerate(text) if char.isdigit()]
    if not digits:
        return data
    at = rng.choice(digits)
    end = at
    while end < len(text) and (text[end].isdigit() or text[end] in ".eE+-"):
        end += 1
    spelling = rng.choice(("1e308", "1e309", "9" * 400, "NaN", "Infinity", "-1e308", "0"))
    return (text[:at] + spelling + text[end:]).encode("utf-8", "surrogateescape")


BYTEWISE: tuple[Callable[[bytes, random.Random], bytes], ...] = (
    byte_flip,
    truncate,
    insert_bytes,
    numbers_huge,
)


def mutate(seed: str, rng: random.Random) -> bytes:
    """One poison frame made from `seed` (a frame's text), as the bytes a venue could send."""
    try:
        frame = orjson.loads(seed)
    except orjson.JSONDecodeError:
        frame = None
    if frame is not None and rng.random() < 0.6:
        text = rng.choice(STRUCTURAL)(frame, rng)
        data = text.encode("utf-8", "surrogatepass")
        if rng.random() < 0.2:
            data = rng.choice(BYTEWISE)(data, rng)
        return data
    return rng.choice(BYTEWISE)(seed.encode(), rng)


# ---- the checks ----


def _json_type(value: Any) -> str:
    return (
        "number"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else (type(value).__name__)
    )


def quiet_allowed(frame: Any, path: tuple[Any, ...], poison: str) -> bool:
    """Whether a data frame with the node at `path` replaced by `poison` may yield nothing.

    Only where the result is a frame that carries no liquidation by the venue's rules: the
    whole frame swapped for another object or array (another kind of message: acks, heartbeats,
    info), a top-level string field changed (it names the message kind: `table`, `channel`,
    `event`, `type`, `op`, `method`), a list of items emptied, or a value swapped for another of
    the same JSON type (another trade type, an ordinary fill). A value of the wrong type inside
    a data message must give a reject."""
    replacement = orjson.loads(poison)
    node = _node(frame, path)
    if not path:
        return isinstance(replacement, dict | list)
    if len(path) == 1 and isinstance(node, str):
        return True
    if replacement == [] and isinstance(node, list | dict):  # one item or a list of them
        return True
    return _json_type(replacement) == _json_type(node)


def silent_type_mutations(c: Corpus) -> list[str]:
    """Every (data seed, field, poison value) whose frame yields neither events nor rejects
    where `quiet_allowed` says it must: the exhaustive check behind "nothing vanishes"."""
    silent = []
    for seed in c.data_seeds:
        frame = orjson.loads(seed)
        for path in paths(frame):
            for poison in POISON_JSON:
                if poison.startswith('"\\ud') or quiet_allowed(frame, path, poison):
                    continue
                parsed = c.feed.parse(replace_at(frame, path, poison), c.book, RECEIVED_TS)
                if not parsed.events and not parsed.rejects:
                    silent.append(f"{c.feed.name}: {list(path)} = {poison[:40]} in {seed[:120]}")
    return silent


def _outcome(c: Corpus, text: str) -> tuple[list[Any], list[str]]:
    parsed = c.feed.parse(text, c.book, RECEIVED_TS)
    return [e.to_dict() for e in parsed.events], [r.reason for r in parsed.rejects]


def _node(frame: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        frame = frame[step]
    return frame


def _numeric(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def booleans_read_as_numbers(c: Corpus) -> list[str]:
    """Numeric fields of the data seeds where `true` makes an event `null` does not, the same
    as `1` makes: the parser read the boolean as the number 1."""
    found = []
    for seed in c.data_seeds:
        frame = orjson.loads(seed)
        for path in paths(frame):
            if not _numeric(_node(frame, path)):
                continue
            as_true = _outcome(c, replace_at(frame, path, "true"))
            as_null = _outcome(c, replace_at(frame, path, "null"))
            if len(as_true[0]) <= len(as_null[0]):
                continue  # the boolean made no event that null would not
            if as_true == _outcome(c, replace_at(frame, path, "1")):
                found.append(f"{c.feed.name}: {list(path)} in {seed[:120]}")
    return found


@dataclass
class Tally:
    frames: int = 0
    events: int = 0
    rejects: int = 0
    quiet: int = 0
    tracebacks: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)


def as_text(data: bytes) -> str:
    """What a parser can be handed: a websocket text frame is UTF-8, so invalid bytes appear
    here as the lone surrogates Python's `surrogateescape` makes of them."""
    return data.decode("utf-8", "surrogateescape")


def check_parse(
    feed: Feed,
    book: InstrumentBook,
    text: str,
    tally: Tally,
    parse: Parser | None = None,
    received_ts: int = RECEIVED_TS,
) -> Parsed | None:
    """Parse one frame (with `feed.parse`, or `parse`: the shell's stateful parser); record a
    traceback or an unbounded reject list as a failure."""
    if parse is None:
        tally.frames += 1
    try:
        parsed = (parse or feed.parse)(text, book, received_ts)
    except Exception:  # every escape is counted and printed: finding them is the point
        tally.tracebacks.append(f"{feed.name}: {text[:300]!r}\n{traceback.format_exc()}")
        return None
    tally.events += len(parsed.events)
    tally.rejects += len(parsed.rejects)
    tally.reasons.update(r.reason for r in parsed.rejects)
    if not parsed.events and not parsed.rejects:
        tally.quiet += 1
    if len(parsed.rejects) > MAX_REJECTS_PER_FRAME + 1:
        tally.lost.append(f"{feed.name}: {len(parsed.rejects)} rejects from one frame")
    for rejected in parsed.rejects:
        if not rejected.reason or not isinstance(rejected.detail, str):
            tally.lost.append(f"{feed.name}: reject without a reason: {rejected!r}")
        else:
            try:
                rejected.detail.encode()
            except UnicodeEncodeError:
                tally.lost.append(f"{feed.name}: reject detail is not UTF-8: {rejected!r}")
    return parsed


def check_normalize(feed: Feed, book: InstrumentBook, lines: list[bytes], tally: Tally) -> None:
    """The lines through `normalize_lines`: no traceback, every reject record has a reason, and
    every line that is not UTF-8 or whose frame the parser rejects has a reject record."""
    out, err = io.StringIO(), io.StringIO()
    stream = io.BytesIO(b"".join(line + b"\n" for line in lines))
    try:
        normalize_lines(feed, stream, out, err, received_ts=RECEIVED_TS, instruments=book)
    except Exception:  # counted and printed, as above
        tally.tracebacks.append(f"normalize {feed.name}\n{traceback.format_exc()}")
        return
    rejected_lines = set()
    for line in err.getvalue().split("\n")[:-1]:
        record = orjson.loads(line)
        rejected_lines.add(record["line"])
        if not record.get("reason"):
            tally.lost.append(f"normalize {feed.name}: reject without reason {line[:200]}")
    # normalize keeps one (possibly stateful) parser for all lines: replay them through another
    parse = feed.stateful_parse() if feed.stateful_parse else feed.parse
    for number, line in enumerate(lines, start=1):
        try:
            text = line.rstrip(b"\r\n").decode()  # as normalize reads a CRLF line
        except UnicodeDecodeError:
            expected = True
        else:
            expected = bool(parse(text, book, RECEIVED_TS).rejects)
        if expected and line.strip(b" \t\r") and number not in rejected_lines:
            tally.lost.append(f"normalize {feed.name}: line {number} vanished: {line[:200]!r}")


def run(frames: int, seed: int, *, normalize_every: int = 50) -> Tally:
    """`frames` poison frames spread evenly over every feed."""
    rng = random.Random(seed)
    corpora = [corpus(feed) for feed in FEEDS.values()]
    tally = Tally()
    batch: dict[str, list[bytes]] = {c.feed.name: [] for c in corpora}
    # the parsers the live pipeline keeps per feed (state across frames), fed the same frames
    stateful = {c.feed.name: c.feed.stateful_parse() for c in corpora if c.feed.stateful_parse}
    for number in range(frames):
        c = corpora[number % len(corpora)]
        data = mutate(rng.choice(c.seeds), rng)
        check_parse(c.feed, c.book, as_text(data), tally)
        if c.feed.name in stateful:
            at_ms = RECEIVED_TS + number * 50  # time passes: held state expires
            check_parse(c.feed, c.book, as_text(data), tally, stateful[c.feed.name], at_ms)
        lines = batch[c.feed.name]
        lines.append(data.replace(b"\n", b" "))
        if len(lines) >= normalize_every:
            check_normalize(c.feed, c.book, lines, tally)
            lines.clear()
    for c in corpora:
        if batch[c.feed.name]:
            check_normalize(c.feed, c.book, batch[c.feed.name], tally)
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args(argv)
    tally = run(args.frames, args.seed)
    for failure in [*tally.tracebacks[:5], *tally.lost[:5]]:
        print(failure, file=sys.stderr)
    print(
        f"frames {tally.frames} across {len(FEEDS)} feeds: events {tally.events},"
        f" rejects {tally.rejects}, quiet {tally.quiet},"
        f" tracebacks {len(tally.tracebacks)}, lost lines {len(tally.lost)}"
    )
    print("reject reasons: " + ", ".join(f"{r} {n}" for r, n in tally.reasons.most_common(12)))
    return 0 if not tally.tracebacks and not tally.lost else 1


if __name__ == "__main__":
    sys.exit(main())
