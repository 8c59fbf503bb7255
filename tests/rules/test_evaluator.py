"""The evaluator, one behaviour at a time, on hand-made streams."""

from __future__ import annotations

import pytest

from stream.commands import Detector
from stream.engine.rules import parse_rules
from tests.worker.test_aggregation import BASE_MS, make_event

RES = 60_000
WINDOWS_MS = {"5m": 300_000, "1h": 3_600_000}
MIN = 60_000
_ids = iter(range(1_000_000))


def detector(rules_yaml: str) -> Detector:
    return Detector(parse_rules("rules:\n" + rules_yaml, WINDOWS_MS, RES), WINDOWS_MS, RES)


def ev(at_min: float, usd: float, side: str = "long", exchange: str = "binance", coin: str = "BTC"):
    return make_event(next(_ids), BASE_MS + int(at_min * MIN), exchange, coin, side, usd)


def states(records: list[dict]) -> list[tuple]:
    return [(r["rule"], r["state"], r["exchange"], r["coin"]) for r in records]


@pytest.mark.parametrize(
    ("metric", "events", "value"),
    [
        ("total_usd", [(600, "long"), (500, "short")], 1100.0),
        ("long_usd", [(600, "long"), (500, "long")], 1100.0),
        ("short_usd", [(600, "short"), (500, "short")], 1100.0),
        ("count", [(1, "long")] * 3, 3),
    ],
)
def test_window_metrics_breach_once_on_the_crossing(metric, events, value) -> None:
    threshold = 2 if metric == "count" else 1000
    d = detector(f"  - {{name: r, metric: {metric}, window: 5m, above: {threshold}}}\n")
    records = [r for i, (usd, side) in enumerate(events) for r in d.add(ev(i * 0.1, usd, side))]
    assert len(records) == 1
    assert records[0]["state"] == "breach" and records[0]["value"] == value
    assert records[0]["threshold"] == threshold
    # staying above is not a new breach
    assert d.add(ev(0.5, 10, events[0][1])) == []


def test_long_share_below_and_above() -> None:
    d = detector(
        "  - {name: longs, metric: long_share, window: 5m, above: 0.8}\n"
        "  - {name: shorts, metric: long_share, window: 5m, below: 0.3}\n"
    )
    assert states(d.add(ev(0, 100, "long"))) == [("longs", "breach", None, None)]
    # 100 long, 400 short: share 0.2 -> longs recovers, shorts breaches
    out = d.add(ev(0.1, 400, "short"))
    assert states(out) == [("longs", "recovered", None, None), ("shorts", "breach", None, None)]
    assert out[1]["value"] == pytest.approx(0.2)


def test_single_usd_fires_per_event_with_the_order_attached() -> None:
    d = detector("  - {name: whale, metric: single_usd, scope: {coin: BTC}, above: 1000000}\n")
    assert d.add(ev(0, 999_999)) == []
    assert d.add(ev(0.1, 2_000_000, coin="ETH")) == []  # out of scope
    first = d.add(ev(0.2, 1_500_000))
    second = d.add(ev(0.3, 3_000_000, "short", exchange="okx"))
    assert [r["value"] for r in first + second] == [1_500_000, 3_000_000]
    assert second[0]["event"]["exchange"] == "okx" and second[0]["event"]["side"] == "short"
    assert second[0]["coin"] == "BTC" and second[0]["window"] is None


def test_wildcards_evaluate_each_coin_and_each_exchange() -> None:
    d = detector(
        '  - {name: coin, metric: total_usd, window: 5m, scope: {coin: "*"}, above: 100}\n'
        '  - {name: venue, metric: total_usd, window: 5m, scope: {exchange: "*"}, above: 100}\n'
        '  - {name: okx-coin, metric: count, window: 5m, scope: {exchange: okx, coin: "*"},'
        " above: 0}\n"
    )
    out = d.add(ev(0, 150, coin="BTC", exchange="binance"))
    assert states(out) == [("coin", "breach", None, "BTC"), ("venue", "breach", "binance", None)]
    out = d.add(ev(0.1, 150, coin="ETH", exchange="okx"))
    assert states(out) == [
        ("coin", "breach", None, "ETH"),
        ("venue", "breach", "okx", None),
        ("okx-coin", "breach", "okx", "ETH"),
    ]
    assert d.add(ev(0.2, 150, coin="BTC", exchange="binance")) == []  # both already in breach


def test_a_wildcard_below_rule_sees_a_scope_go_quiet() -> None:
    """`count below` per exchange is how one notices a venue's feed going silent: its scope
    is evaluated while it has events in the longest window, not only in the rule's."""
    d = detector('  - {name: quiet, metric: count, window: 5m, scope: {exchange: "*"}, below: 1}\n')
    for minute in (0, 0.5, 1):
        assert d.add(ev(minute, 1, exchange="okx")) == []
    out = d.add(ev(7, 1, exchange="binance"))  # okx's last event left the 5m window at 6
    assert states(out) == [("quiet", "breach", "okx", None)]
    assert out[0]["value"] == 0 and out[0]["event_id"] is None
    assert out[0]["ts"] == BASE_MS + 6 * MIN


def test_hysteresis_band_delays_recovery() -> None:
    d = detector(
        "  - {name: r, metric: total_usd, window: 5m, scope: {coin: BTC}, above: 1000,"
        " hysteresis: 0.5}\n"
    )
    assert states(d.add(ev(0, 1200))) == [("r", "breach", None, "BTC")]
    # 3 minutes later the first event is still inside the window; at 5 it leaves
    d.add(ev(3, 400, coin="ETH"))
    d.add(ev(3.1, 400))  # BTC 5m: 1600
    # at minute 5 the 1200 leaves: 400 <= 1000 * 0.5 -> recovered (time passing, no event)
    out = d.add(ev(5.5, 1, coin="ETH"))
    assert states(out) == [("r", "recovered", None, "BTC")]
    assert out[0]["event_id"] is None and out[0]["ts"] == BASE_MS + 5 * MIN
    assert out[0]["value"] == 400.0


def test_inside_the_band_is_still_in_breach() -> None:
    d = detector("  - {name: r, metric: total_usd, window: 5m, above: 1000, hysteresis: 0.5}\n")
    d.add(ev(0, 700))
    assert states(d.add(ev(1, 700))) == [("r", "breach", None, None)]
    assert d.add(ev(5.5, 1)) == []  # 700 + 1 left: above 500, no recovery
    assert states(d.add(ev(6.5, 1))) == [("r", "recovered", None, None)]


def test_decay_recovers_at_the_boundary_even_across_a_long_silence() -> None:
    d = detector("  - {name: r, metric: count, window: 5m, above: 1}\n")
    d.add(ev(0, 1))
    assert states(d.add(ev(2, 1))) == [("r", "breach", None, None)]
    out = d.add(ev(600, 1))  # ten hours later
    assert states(out) == [("r", "recovered", None, None)]
    assert out[0]["ts"] == BASE_MS + 5 * MIN  # the first event left the window there


def test_cooldown_suppresses_a_second_breach_then_allows_it() -> None:
    d = detector("  - {name: r, metric: count, window: 5m, above: 1, cooldown: 10m}\n")
    d.add(ev(0, 1))
    assert states(d.add(ev(0.5, 1))) == [("r", "breach", None, None)]
    assert states(d.add(ev(7, 1))) == [("r", "recovered", None, None)]
    assert d.add(ev(7.5, 1)) == []  # crossing again inside the cooldown: quiet
    out = d.add(ev(10.6, 1))  # cooldown over and still above: breach now
    assert states(out) == [("r", "breach", None, None)]
    assert out[0]["ts"] == BASE_MS + int(10.6 * MIN)


def test_reload_keeps_state_of_unchanged_rules_only() -> None:
    d = detector(
        "  - {name: keep, metric: count, window: 5m, above: 0}\n"
        "  - {name: change, metric: count, window: 5m, above: 0}\n"
    )
    assert len(d.add(ev(0, 1))) == 2
    d.evaluator.set_rules(
        parse_rules(
            "rules:\n"
            "  - {name: keep, metric: count, window: 5m, above: 0}\n"
            "  - {name: change, metric: count, window: 30m, above: 0}\n",
            WINDOWS_MS,
            RES,
        )
    )
    assert states(d.add(ev(0.5, 1))) == [("change", "breach", None, None)]


def test_replayed_records_restore_state() -> None:
    rules = "  - {name: r, metric: count, window: 5m, scope: {coin: BTC}, above: 0}\n"
    first = detector(rules)
    (record,) = first.add(ev(0, 1))
    second = detector(rules)
    second.evaluator.apply_record(record)
    assert second.add(ev(0.1, 1)) == []  # already published: not again
    assert second.evaluator.changed == {("r", "*|BTC")}


def test_reset_then_restore_takes_states_replays_and_repeats() -> None:
    """What a recovery does: forget everything, take the table's states, the records read
    back, and the repeats not to publish again (stream.engine.recovery decides which)."""
    rules = (
        "  - {name: r, metric: count, window: 5m, scope: {coin: BTC}, above: 0}\n"
        "  - {name: big, metric: single_usd, above: 100}\n"
    )
    first = detector(rules)
    published = first.add(ev(0, 500))
    assert states(published) == [("r", "breach", None, "BTC"), ("big", "breach", None, None)]
    evaluator = detector(rules).evaluator
    evaluator.emitted.append({"stale": True})
    evaluator.reset()
    assert (evaluator.states, evaluator.emitted, evaluator.clock) == ({}, [], None)
    evaluator.restore({}, published, [published[1]])
    assert evaluator.states[("r", "*|BTC")].breached
    assert not evaluator.states[("big", "*|*")].breached  # single_usd keeps only its cooldown
    evaluator.emitted.extend(published)  # the batch evaluated again emits the same records
    assert evaluator.drain() == [published[0]]  # only the suppressed repeat is held back
    evaluator.stop_suppressing()
    evaluator.emitted.append(published[1])
    assert evaluator.drain() == [published[1]]
    assert sorted(key for key, _ in evaluator.take_changed()) == [("big", "*|*"), ("r", "*|BTC")]
    assert evaluator.take_changed() == []
