"""`liqstream detect`'s engine equals a brute-force evaluation on random event streams."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.commands import Detector
from stream.engine.rules import RuleSet, parse_rules
from tests.rules.reference import brute_force_detect
from tests.worker.test_aggregation import BASE_MS, RESOLUTION_MS, WINDOWS_MS, make_event

EXCHANGES = ("binance", "okx", "bybit")
COINS = ("BTC", "ETH", "SOL")

steps_ms = st.one_of(
    st.integers(min_value=0, max_value=90_000),  # busy market
    st.integers(min_value=0, max_value=30).map(lambda k: k * RESOLUTION_MS),  # bucket edges
    st.integers(min_value=-120_000, max_value=0),  # a little out of order
    st.integers(min_value=600_000, max_value=4_000_000),  # quiet spells: decay
)
events_strategy = st.lists(
    st.tuples(
        steps_ms,
        st.sampled_from(EXCHANGES),
        st.sampled_from(COINS),
        st.sampled_from(("long", "short")),
        st.one_of(
            st.sampled_from((1_000.0, 250_000.0, 1_000_000.0)),
            st.floats(min_value=0.01, max_value=3_000_000, allow_nan=False),
        ),
    ),
    max_size=60,
)


@st.composite
def rule_yaml(draw: st.DrawFn, index: int) -> str:
    metric = draw(
        st.sampled_from(("total_usd", "long_usd", "short_usd", "count", "long_share", "single_usd"))
    )
    scope = draw(
        st.sampled_from(
            (
                "{}",
                "{coin: BTC}",
                "{exchange: okx}",
                "{exchange: binance, coin: ETH}",
                '{coin: "*"}',
                '{exchange: "*"}',
                '{exchange: "*", coin: "*"}',
                '{exchange: okx, coin: "*"}',
            )
        )
    )
    lines = [f"  - name: r{index}", f"    metric: {metric}", f"    scope: {scope}"]
    if metric == "single_usd":
        threshold = draw(st.sampled_from((500_000, 1_000_000, 2_000_000)))
        lines.append(f"    above: {threshold}")
    else:
        lines.append(f"    window: {draw(st.sampled_from(('5m', '15m', '1h', '2m', '30m')))}")
        direction = draw(st.sampled_from(("above", "below")))
        if metric == "long_share":
            threshold = draw(st.sampled_from((0.2, 0.5, 0.8)))
        elif metric == "count":
            threshold = draw(st.sampled_from((2, 5, 10)))
        else:
            threshold = draw(st.sampled_from((500_000, 2_000_000, 5_000_000)))
        lines.append(f"    {direction}: {threshold}")
        hystereses = (0, 0.1, 0.5)
        if metric == "long_share" and direction == "below":  # recovery must stay within 1
            hystereses = tuple(h for h in hystereses if threshold * (1 + h) <= 1)
        lines.append(f"    hysteresis: {draw(st.sampled_from(hystereses))}")
    lines.append(f"    cooldown: {draw(st.sampled_from(('0', '2m', '10m')))}")
    return "\n".join(lines)


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    count = draw(st.integers(min_value=1, max_value=4))
    text = "rules:\n" + "\n".join(draw(rule_yaml(i)) for i in range(count))
    return parse_rules(text, WINDOWS_MS, RESOLUTION_MS)


def build_events(raw: list[tuple[int, str, str, str, float]]) -> list[dict]:
    events = []
    clock = BASE_MS
    for n, (step, exchange, coin, side, notional) in enumerate(raw):
        clock += step
        events.append(make_event(n, clock, exchange, coin, side, notional))
    return events


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=events_strategy, rules=rule_sets())
def test_detect_equals_brute_force(raw: list, rules: RuleSet) -> None:
    events = build_events(raw)
    detector = Detector(rules, WINDOWS_MS, RESOLUTION_MS)
    got = [record for event in events for record in detector.add(event)]
    want = brute_force_detect(events, list(rules.rules), WINDOWS_MS, RESOLUTION_MS)
    assert got == want
