"""No frame stops a feed (issue 15): every feed's parser is total over any JSON value in any
field and over broken bytes, rejects are bounded per frame, and `liqstream normalize` turns
every line it cannot use into a reject with a reason. The mutations live in
`tests/collectors/fuzzing.py`; `make fuzz` runs 100,000 of them."""

from __future__ import annotations

import functools
import io
import json
import math
import random
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.cli import main
from stream.collectors.parsing import (
    MAX_FRAME_DEPTH,
    MAX_REJECTS_PER_FRAME,
    TOO_MANY_REJECTS,
    item_text,
)
from stream.collectors.registry import FEEDS
from stream.commands import normalize_lines
from stream.schema import SIDES
from tests.collectors import fuzzing
from tests.collectors.fuzzing import RECEIVED_TS, Corpus, Tally

FEED_NAMES = sorted(FEEDS)
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

# The frame of issue 15 that stopped `liqstream normalize`: the order side is a list.
BINANCE_SIDE_LIST = (
    '{"e":"forceOrder","E":1800000019007,"o":{"s":"BTCUSDT","S":[null],"o":"LIMIT","f":"IOC",'
    '"q":"0.014","p":"9910","ap":"9910","X":"FILLED","l":"0.014","z":"0.014","T":1800000019008}}'
)
BINANCE_VALID = BINANCE_SIDE_LIST.replace('"S":[null]', '"S":"SELL"')

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@functools.cache
def corpus(name: str) -> Corpus:
    return fuzzing.corpus(FEEDS[name])


def assert_sound(c: Corpus, text: str) -> Any:
    """Parse without an exception; rejects bounded, each with a reason and UTF-8 text;
    events complete. Returns the Parsed."""
    tally = Tally()
    parsed = fuzzing.check_parse(c.feed, c.book, text, tally)
    assert tally.tracebacks == [], tally.tracebacks[0]
    assert tally.lost == [], tally.lost
    assert parsed is not None
    for event in parsed.events:
        assert event.side in SIDES
        assert all(
            math.isfinite(v) and v > 0 for v in (event.price, event.quantity, event.notional_usd)
        )
    return parsed


@pytest.mark.parametrize("name", FEED_NAMES)
def test_every_feed_has_frames_with_events_to_mutate(name: str) -> None:
    """The checks below are only as good as their seeds: each feed has data frames."""
    assert corpus(name).data_seeds, f"{name}: no fixture or rendered frame gives an event"


@pytest.mark.parametrize("name", FEED_NAMES)
@FUZZ
@given(data=st.data())
def test_mutated_frames_never_raise(name: str, data: st.DataObject) -> None:
    """Byte flips, truncation, inserted bytes (invalid UTF-8, control characters), huge and
    non-finite numbers, wrong types, deep nesting, dropped keys, floods of broken items."""
    c = corpus(name)
    seed = data.draw(st.sampled_from(c.seeds), label="seed")
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="mutation"))
    assert_sound(c, fuzzing.as_text(fuzzing.mutate(seed, rng)))


@pytest.mark.parametrize("name", [name for name in FEED_NAMES if FEEDS[name].stateful_parse])
@FUZZ
@given(data=st.data())
def test_stateful_parsers_survive_a_sequence_of_poison(name: str, data: st.DataObject) -> None:
    """The parser the live pipeline keeps per feed (Bitfinex pairing, BitMEX's XBT rate) holds
    state across frames: valid and mutated frames interleaved, time passing, never raise."""
    c = corpus(name)
    parse = c.feed.stateful_parse() if c.feed.stateful_parse else c.feed.parse
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1), label="mutations"))
    tally = Tally()
    for step in range(30):
        seed = rng.choice(c.seeds)
        text = seed if rng.random() < 0.3 else fuzzing.as_text(fuzzing.mutate(seed, rng))
        fuzzing.check_parse(c.feed, c.book, text, tally, parse, RECEIVED_TS + step * 2_000)
    assert tally.tracebacks == [], tally.tracebacks[0]
    assert tally.lost == [], tally.lost


@pytest.mark.parametrize("name", FEED_NAMES)
@FUZZ
@given(data=st.data())
def test_any_json_value_in_any_field(name: str, data: st.DataObject) -> None:
    """Any JSON value at any place of a frame with events: no exception, and the frame yields
    events or rejects unless the change made it a frame that carries no liquidation."""
    c = corpus(name)
    frame = orjson.loads(data.draw(st.sampled_from(c.data_seeds), label="seed"))
    path = data.draw(st.sampled_from(list(fuzzing.paths(frame))), label="path")
    value = data.draw(json_values, label="value")
    replacement = json.dumps(value)
    parsed = assert_sound(c, fuzzing.replace_at(frame, path, replacement))
    if not fuzzing.quiet_allowed(frame, path, replacement):
        assert parsed.events or parsed.rejects, (path, replacement)


@pytest.mark.parametrize("name", FEED_NAMES)
@FUZZ
@given(value=json_values)
def test_any_json_value_as_a_frame(name: str, value: Any) -> None:
    c = corpus(name)
    parsed = assert_sound(c, json.dumps(value))
    if not isinstance(value, dict | list):
        assert [r.reason for r in parsed.rejects] == ["unexpected_shape"]


@pytest.mark.parametrize("name", FEED_NAMES)
@pytest.mark.parametrize("frame", ["{}", '{"a":1}', '{"liquidation":true}'])
def test_an_object_that_is_no_venue_message_is_a_reject(name: str, frame: str) -> None:
    """Acks, heartbeats and info messages yield nothing; an object that carries none of the
    keys the venue names its messages by is no such message and must not vanish."""
    parsed = assert_sound(corpus(name), frame)
    assert [r.reason for r in parsed.rejects] == ["unexpected_shape"]


@pytest.mark.parametrize("name", FEED_NAMES)
def test_a_wrong_type_in_any_field_is_never_silent(name: str) -> None:
    """Exhaustive: every field of every data frame, every poison value of another JSON type
    (null, booleans, huge numbers, lists, objects, ...) gives an event or a reject."""
    assert fuzzing.silent_type_mutations(corpus(name)) == []


@pytest.mark.parametrize("name", FEED_NAMES)
def test_booleans_are_not_numbers(name: str) -> None:
    assert fuzzing.booleans_read_as_numbers(corpus(name)) == []


@pytest.mark.parametrize("name", FEED_NAMES)
def test_a_flood_of_broken_items_is_one_frames_worth_of_rejects(name: str) -> None:
    """Issue 15: one dYdX line gave 994,036 malformed_item rejects."""
    c = corpus(name)
    frame = orjson.loads(c.data_seeds[0])
    flood = fuzzing.multiply_items(frame, random.Random(0))  # the first list, broken copies
    parsed = assert_sound(c, flood)
    assert len(parsed.rejects) <= MAX_REJECTS_PER_FRAME + 1
    if len(parsed.rejects) > MAX_REJECTS_PER_FRAME:
        summary = parsed.rejects[-1]
        assert summary.reason == TOO_MANY_REJECTS
        assert summary.detail.startswith("and ") and "more rejects in this frame" in summary.detail


def test_dydx_flood_of_broken_items_counts_the_rest() -> None:
    """499,000 items, just under the frame size limit."""
    c = corpus("dydx")
    broken = ",".join(["0"] * 499_000)
    text = (
        '{"type":"channel_data","id":"BTC-USD","channel":"v4_trades","message_id":1,'
        f'"contents":{{"trades":[{broken}]}}}}'
    )
    parsed = assert_sound(c, text)
    assert len(parsed.rejects) == MAX_REJECTS_PER_FRAME + 1
    assert {r.reason for r in parsed.rejects[:-1]} == {"malformed_item"}
    more = 499_000 - MAX_REJECTS_PER_FRAME
    assert parsed.rejects[-1].detail == (
        f"and {more} more rejects in this frame (malformed_item {more})"
    )


def test_an_unknown_symbol_past_the_cap_is_still_kept() -> None:
    """The shell refreshes instruments on an `unknown_symbol` reject: the cap never hides it."""
    unknown = BINANCE_VALID.replace('"BTCUSDT"', '"QQQ"')
    parsed = assert_sound(corpus("binance-usdm"), "[" + "{}," * 30 + unknown + "]")
    reasons = [r.reason for r in parsed.rejects]
    assert len(reasons) == MAX_REJECTS_PER_FRAME + 1
    assert reasons[-2:] == ["unknown_symbol", TOO_MANY_REJECTS]
    assert parsed.rejects[-1].detail == ("and 11 more rejects in this frame (unexpected_shape 11)")


def test_binance_side_that_is_a_list_is_a_reject() -> None:
    """Issue 15's reproduction (it raised `TypeError: unhashable type`)."""
    parsed = assert_sound(corpus("binance-usdm"), BINANCE_SIDE_LIST)
    assert parsed.events == [] and [r.reason for r in parsed.rejects] == ["unexpected_shape"]


def test_bitget_product_type_that_is_a_list_is_a_reject() -> None:
    c = corpus("bitget")
    frame = orjson.loads(c.data_seeds[0])
    frame["arg"]["instType"] = ["usdt-futures"]
    parsed = assert_sound(c, orjson.dumps(frame).decode())
    assert [r.reason for r in parsed.rejects] == ["unexpected_shape"]


def test_boolean_size_is_invalid_number_not_one() -> None:
    parsed = assert_sound(corpus("binance-usdm"), BINANCE_VALID.replace('"z":"0.014"', '"z":true'))
    assert parsed.events == [] and [r.reason for r in parsed.rejects] == ["invalid_number"]


@pytest.mark.parametrize("depth", [MAX_FRAME_DEPTH + 1, 500, 1_000])
def test_deep_nesting_is_refused_before_any_venue_code(depth: int) -> None:
    """Issue 15: RecursionError in item_text's repr() fallback; venue code calls str() too."""
    text = BINANCE_VALID.replace('"SELL"', "[" * depth + "]" * depth)
    for name in FEED_NAMES:
        parsed = assert_sound(corpus(name), text)
        assert [r.reason for r in parsed.rejects] == ["nesting_too_deep"], name


def test_item_text_never_recurses_and_is_bounded() -> None:
    deep: Any = 1
    for _ in range(5_000):
        deep = [deep]
    text = item_text(deep)
    assert text.startswith("[[[") and "..." in text
    assert len(item_text(["x" * 100_000])) < 4_100


# ---- liqstream normalize ----


def normalize(lines: list[bytes] | list[str], name: str = "binance-usdm") -> tuple[str, list]:
    out, err = io.StringIO(), io.StringIO()
    feed = FEEDS[name]
    source: Any = (
        io.BytesIO(b"".join(line + b"\n" for line in lines))
        if lines and isinstance(lines[0], bytes)
        else lines
    )
    normalize_lines(feed, source, out, err, received_ts=RECEIVED_TS, instruments=corpus(name).book)
    return out.getvalue(), [orjson.loads(line) for line in err.getvalue().split("\n")[:-1]]


def test_normalize_invalid_utf8_is_a_reject_and_the_batch_goes_on() -> None:
    """Issue 15: `str is not valid UTF-8: surrogates not allowed` stopped the reject writer."""
    bad = BINANCE_VALID.encode().replace(b"BTCUSDT", b"BTC\xff\xfeUSDT")
    out, rejects = normalize([bad, BINANCE_SIDE_LIST.encode(), BINANCE_VALID.encode()])
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (1, "invalid_utf8"),
        (2, "unexpected_shape"),
    ]
    assert "BTC\\xff\\xfeUSDT" in rejects[0]["payload"]
    assert len(out.splitlines()) == 1 and orjson.loads(out)["symbol"] == "BTCUSDT"


def test_normalize_surrogates_in_text_lines_are_invalid_utf8() -> None:
    """Lines read as text with surrogateescape carry invalid bytes as lone surrogates."""
    _, rejects = normalize([BINANCE_VALID.replace("BTC", "BTC\udcff") + "\n"])
    assert [r["reason"] for r in rejects] == ["invalid_utf8"]
    assert "\\udcff" in rejects[0]["payload"]


@pytest.mark.parametrize(
    "line", [b"\x1c", b"\x1d", b"\x1c\x1d\x1c", b"\x1e", b"\x0b\x0c", "\x85".encode()]
)
def test_normalize_control_character_lines_are_rejects_not_blank(line: bytes) -> None:
    """Python's str.strip() and splitlines() treat \\x1c-\\x1e, \\x0b, \\x0c and \\x85 as
    whitespace or line breaks; they are not blank lines, and never split a line."""
    out, rejects = normalize([b"", line, b"  \t\r", BINANCE_VALID.encode()])
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "invalid_json")]
    assert len(out.splitlines()) == 1


def test_normalize_command_reads_bytes() -> None:
    """The issue's reproduction through the command itself: no traceback, every line out."""
    stdin = b"\n".join(
        [BINANCE_SIDE_LIST.encode(), b"\xff\xfe{}", b"\x1c\x1d", BINANCE_VALID.encode()]
    )
    result = CliRunner().invoke(
        main,
        ["normalize", "--exchange", "binance-usdm", "--received-ts", str(RECEIVED_TS)],
        input=stdin,
    )
    assert result.exception is None, result.output
    lines = result.stdout.splitlines()
    rejects = [orjson.loads(line) for line in result.stderr.split("\n") if line]
    assert [(r["line"], r["reason"]) for r in rejects] == [
        (1, "unexpected_shape"),
        (2, "invalid_utf8"),
        (3, "invalid_json"),
    ]
    assert len(lines) == 1 and orjson.loads(lines[0])["side"] == "long"


def test_fuzz_run_bounded() -> None:
    """`make fuzz` in small: every feed, parsers and normalize_lines, 0 tracebacks and 0 lost
    lines (the full 100,000 frames run with `make fuzz`)."""
    tally = fuzzing.run(frames=1_500, seed=1)
    assert tally.tracebacks == [], tally.tracebacks[0]
    assert tally.lost == [], tally.lost[:3]
    assert tally.frames == 1_500 and tally.rejects > 0 and tally.events > 0
