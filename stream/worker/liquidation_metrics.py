"""Prometheus counters of liquidated USD and orders by exchange, coin and side, for Grafana.

Counted in stage two from the events the aggregation applied, so every event counts once
however many workers and API processes run: only the worker that owns the batches partition
applies batches (standby workers and `liqstream api` count nothing), and a batch delivered
again after a crash or rebalance counts only in the buckets that did not hold it yet, exactly
as the totals do. Counters live in the process: a restart starts them at zero, which
Prometheus' `rate()`/`increase()` read as a counter reset (increments of a killed process
since its last scrape are lost to Prometheus, never counted twice).

Coin labels are bounded: the top `TOP_COINS` coins by USD liquidated over the longest window
(the dashboard's "Top coins"), ranked again every `RANK_INTERVAL_MS`, get a label of their
own and keep it for the life of the process, so a coin hovering around rank N never splits
its series between its name and `other`; at most `MAX_COIN_LABELS` coins are ever labelled,
every other coin counts under `other`. The sum over coins is always the market's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stream.engine.scope import parse_scope
from stream.engine.totals import ScopeSums

TOP_COINS = 20
MAX_COIN_LABELS = 2 * TOP_COINS
RANK_INTERVAL_MS = 60_000
OTHER = "other"
USD_NAME = "liqstream_liquidated_usd"
COUNT_NAME = "liqstream_liquidations"


def applied_events(
    events: Iterable[dict[str, Any]],
    changed: Mapping[int, Any],
    rejects: Iterable[tuple[dict[str, Any], str]],
    resolution_ms: int,
) -> Iterator[dict[str, Any]]:
    """The events of a batch that `Aggregation.apply_batch` added: not rejected, and in a
    bucket it changed (a bucket that already held the batch is skipped, so are its events)."""
    rejected = {id(event) for event, _ in rejects}
    for event in events:
        if id(event) not in rejected and event["ts"] // resolution_ms in changed:
            yield event


def top_coins(sums: Mapping[str, Mapping[str, ScopeSums]], window: str, n: int) -> list[str]:
    """The `n` coins with the most USD liquidated in `window` (ties by name), from the
    aggregation's window sums ({scope_id: {window: ScopeSums}})."""
    ranked = []
    for scope_id, windows in sums.items():
        exchange, coin = parse_scope(scope_id)
        running = windows.get(window)
        if exchange is None and coin is not None and running is not None:
            in_window = running.sums()
            if in_window.total_count:
                ranked.append((-in_window.total_micros, coin))
    return [coin for _, coin in sorted(ranked)[:n]]


class LiquidationCounters(Collector):
    """Plain integer sums per (exchange, coin label, side), exported at scrape time (no
    Prometheus call per event); USD kept in micro-dollars like the totals."""

    def __init__(self, top: int = TOP_COINS, max_labels: int = MAX_COIN_LABELS) -> None:
        self.top = top
        self.max_labels = max_labels
        self.labelled: set[str] = set()
        self.ranked_at_ms: int | None = None
        self.micros: dict[tuple[str, str, str], int] = {}
        self.counts: dict[tuple[str, str, str], int] = {}

    def count(self, events: Iterable[dict[str, Any]]) -> None:
        labelled, micros, counts = self.labelled, self.micros, self.counts
        for event in events:
            coin = event["coin"] if event["coin"] in labelled else OTHER
            key = (event["exchange"], coin, event["side"])
            micros[key] = micros.get(key, 0) + int(event["notional_usd"] * 1_000_000 + 0.5)
            counts[key] = counts.get(key, 0) + 1

    def rank(self, sums: Mapping[str, Mapping[str, ScopeSums]], window: str, now_ms: int) -> None:
        """Label the current top coins (labels are kept). At most every RANK_INTERVAL_MS,
        except while fewer than `top` coins have a label (a worker that just started)."""
        recent = self.ranked_at_ms is not None and now_ms - self.ranked_at_ms < RANK_INTERVAL_MS
        if recent and len(self.labelled) >= self.top:
            return
        self.ranked_at_ms = now_ms
        for coin in top_coins(sums, window, self.top):
            if len(self.labelled) >= self.max_labels:
                break
            self.labelled.add(coin)

    def collect(self) -> Iterator[CounterMetricFamily]:
        labels = ["exchange", "coin", "side"]
        usd = CounterMetricFamily(
            USD_NAME, "USD notional liquidated (top coins, others as coin=other)", labels=labels
        )
        orders = CounterMetricFamily(
            COUNT_NAME, "Liquidation orders (top coins, others as coin=other)", labels=labels
        )
        for key in sorted(self.counts):
            usd.add_metric(list(key), self.micros[key] / 1_000_000)
            orders.add_metric(list(key), self.counts[key])
        yield usd
        yield orders
