"""The bundled demo session: deterministic, in every venue's format, shaped like a long
squeeze, and breaching each of its rules within the first minute."""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable

import orjson
import pytest

from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.registry import FEEDS, VENUES
from stream.commands import detect_lines
from stream.config import load_settings
from stream.demo import RULES
from stream.demo.replay import ReplayClock, replay_frames
from stream.demo.session import (
    BACKGROUND_MS,
    CASCADE_MS,
    SEED,
    WHALES,
    DemoOrder,
    background,
    cascade,
    session,
)
from stream.rules import load_rules
from stream.simulators import simulator_for

ORIGIN_MS = 1_762_290_000_000  # a minute boundary, like any other start


def coin_of(order: DemoOrder) -> str:
    return bundled_snapshot(order.feed)[order.symbol].coin


def long_share(orders: Iterable[DemoOrder]) -> float:
    orders = list(orders)
    return sum(o.notional_usd for o in orders if o.side == "long") / sum(
        o.notional_usd for o in orders
    )


def between(orders: Iterable[DemoOrder], start_s: float, end_s: float) -> list[DemoOrder]:
    return [o for o in orders if start_s * 1000 <= o.offset_ms < end_s * 1000]


def test_the_session_is_the_same_for_the_same_seed_only() -> None:
    assert cascade.__wrapped__(SEED) == cascade(SEED)  # type: ignore[attr-defined]
    assert background.__wrapped__(SEED) == background(SEED)  # type: ignore[attr-defined]
    assert cascade.__wrapped__(SEED + 7) != cascade(SEED)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_every_order_renders_in_its_venue_format_and_parses_back(name: str) -> None:
    feed = FEEDS[name]
    render = simulator_for(feed).render
    book = InstrumentBook(feed, url="")
    orders = [o for o in (*cascade(), *background()) if o.feed == name]
    assert len([o for o in orders if o.offset_ms < CASCADE_MS]) >= 10
    for seq, order in enumerate(orders, start=1):
        instrument = book[order.symbol]
        ts = ORIGIN_MS + order.offset_ms
        text = render(instrument, order.side, order.price, order.quantity, ts, seq)
        parsed = feed.parse(text, book, ts)
        assert parsed.rejects == []
        (event,) = parsed.events
        assert (event.exchange, event.symbol, event.coin) == (
            feed.exchange,
            order.symbol,
            instrument.coin,
        )
        assert event.side == order.side
        assert event.notional_usd == pytest.approx(order.notional_usd, rel=1e-9)
        assert event.price == pytest.approx(order.price, rel=1e-9)
        assert event.ts == ts


def test_the_cascade_is_a_long_squeeze_across_venues_and_coins() -> None:
    orders = cascade()
    assert [o.offset_ms for o in orders] == sorted(o.offset_ms for o in orders)
    assert orders[0].offset_ms >= 0 and orders[-1].offset_ms < CASCADE_MS
    assert {FEEDS[o.feed].exchange for o in orders} == set(VENUES)
    assert {"BTC", "ETH", "SOL", "DOGE", "PEPE"} <= {coin_of(o) for o in orders}
    assert {"1000PEPEUSDT", "XBTUSD", "BTC-PERPETUAL", "BTC-USDT-SWAP"} <= {
        o.symbol for o in orders
    }
    assert long_share(orders) > 0.85
    assert long_share(between(orders, 0, 60)) > 0.95  # while prices fall
    assert long_share(between(orders, 60, 90)) < 0.6  # the bounce squeezes shorts too
    # It accelerates, peaks, and eases off.
    assert len(between(orders, 0, 10)) * 3 < len(between(orders, 30, 40))
    assert len(between(orders, 80, 90)) * 2 < len(between(orders, 30, 40))
    # Prices slide: BTC ends the drop about 7 % lower, altcoins lower still.
    for coin, at_least in (("BTC", 0.06), ("SOL", 0.09)):
        first = [o.price for o in between(orders, 0, 10) if coin_of(o) == coin]
        bottom = [o.price for o in between(orders, 55, 65) if coin_of(o) == coin]
        assert min(bottom) < max(first) * (1 - at_least)
    # A few very large orders, and only those, above $1M.
    whales = [o for o in orders if o.notional_usd > 1_000_000]
    assert [(o.offset_ms, o.feed, o.symbol, o.side) for o in whales] == [w[:4] for w in WHALES]
    assert [o.notional_usd for o in whales] == pytest.approx([w[4] for w in WHALES], rel=1e-3)
    assert max(o.notional_usd for o in whales) > 10_000_000


def test_after_the_cascade_the_market_is_quiet_and_two_sided() -> None:
    calm = background()
    assert {o.feed for o in calm} == set(FEEDS)  # every venue stays alive
    assert 0.3 < sum(o.side == "long" for o in calm) / len(calm) < 0.7
    per_minute_usd = sum(o.notional_usd for o in calm) / (BACKGROUND_MS / 60_000)
    cascade_per_minute_usd = sum(o.notional_usd for o in cascade()) / (CASCADE_MS / 60_000)
    assert per_minute_usd < cascade_per_minute_usd / 50
    assert max(o.notional_usd for o in calm) < 1_000_000


def test_the_session_loops_the_quiet_period_after_the_cascade() -> None:
    first, calm = cascade(), background()
    orders = list(itertools.islice(session(), len(first) + 2 * len(calm)))
    assert orders[: len(first)] == list(first)
    for loop in range(2):
        start = len(first) + loop * len(calm)
        looped = orders[start : start + len(calm)]
        shift_ms = CASCADE_MS + loop * BACKGROUND_MS
        assert [o.offset_ms - shift_ms for o in looped] == [o.offset_ms for o in calm]
        assert [o.notional_usd for o in looped] == [o.notional_usd for o in calm]


def replayed_events(until_ms: int) -> list[dict]:
    """What the collectors would publish: every feed's replayed frames, parsed, in time
    order; a venue that gives no event time is stamped with the frame's send time."""
    clock = ReplayClock(ORIGIN_MS, 0.0)
    events = []
    for feed in FEEDS.values():
        book = InstrumentBook(feed, url="")
        for frame in replay_frames(feed, clock):
            sent_ms = ORIGIN_MS + round(frame.due_s * 1000)
            if sent_ms >= ORIGIN_MS + until_ms:
                break
            parsed = feed.parse(frame.text, book, sent_ms)
            assert parsed.rejects == []
            events.extend(event.to_dict() for event in parsed.events)
    return sorted(events, key=lambda event: event["ts"])


def test_each_demo_rule_is_breached_within_the_first_minute_and_totals_recover() -> None:
    settings = load_settings()
    rules = load_rules(RULES, settings.windows_ms, settings.resolution_ms)
    out = io.StringIO()
    events = replayed_events(CASCADE_MS + 2 * BACKGROUND_MS)
    lines = (orjson.dumps(event).decode() for event in events)
    detect_lines(lines, out, io.StringIO(), settings, rules)
    records = [orjson.loads(line) for line in out.getvalue().splitlines()]
    first_breach_ms = {}
    for record in records:
        if record["state"] == "breach":
            first_breach_ms.setdefault(record["rule"], record["ts"] - ORIGIN_MS)
    assert set(first_breach_ms) == {rule.name for rule in rules.rules}
    assert max(first_breach_ms.values()) < 60_000, first_breach_ms
    whales = [r for r in records if r["rule"] == "whale-over-1m"]
    assert [r["value"] for r in whales] == pytest.approx([w[4] for w in WHALES], rel=1e-3)
    # Five minutes on, the cascade has left the 5m window: the market total is back down.
    recovered = [
        r for r in records if r["rule"] == "market-5m-over-40m" and r["state"] == "recovered"
    ]
    assert len(recovered) == 1
