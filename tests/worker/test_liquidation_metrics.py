"""The Prometheus series for Grafana: liquidated USD and orders by exchange, coin and side,
counted once per applied event (a redelivered batch adds nothing), coins bounded to the top N
plus `other`. Values read back from the exposition text a scrape returns."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from stream.config import Settings
from stream.engine.aggregation import Aggregation
from stream.engine.totals import ScopeSums
from stream.topics import ensure_topics
from stream.worker.liquidation_metrics import (
    OTHER,
    LiquidationCounters,
    applied_events,
    top_coins,
)
from tests.worker.test_aggregation import BASE_MS, RESOLUTION_MS, WINDOWS_MS, make_event


def scraped(counters: LiquidationCounters) -> dict[tuple[str, str, str, str], float]:
    """{(sample name, exchange, coin, side): value} as Prometheus would scrape them."""
    registry = CollectorRegistry()
    registry.register(counters)
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            samples[(sample.name, labels["exchange"], labels["coin"], labels["side"])] = (
                sample.value
            )
    return samples


def apply(
    aggregation: Aggregation, counters: LiquidationCounters, events: list[dict], offset: int
) -> None:
    """What the worker's agent does with a batch (stream.worker.agents)."""
    now = BASE_MS + 10 * RESOLUTION_MS
    changed, rejects = aggregation.apply_batch(events, offset, now)
    counters.count(applied_events(events, changed, rejects, RESOLUTION_MS))


def test_counts_usd_and_orders_by_exchange_coin_and_side_once_per_applied_event() -> None:
    aggregation = Aggregation(WINDOWS_MS, RESOLUTION_MS)
    counters = LiquidationCounters(top=2)
    counters.labelled = {"BTC", "ETH"}
    first = [
        make_event(1, BASE_MS + 1_000, "binance", "BTC", "long", 100_000.25),
        make_event(2, BASE_MS + 2_000, "binance", "BTC", "long", 50_000.5),
        make_event(3, BASE_MS + 61_000, "bybit", "ETH", "short", 3_000.125),
        make_event(4, BASE_MS + 62_000, "bybit", "DOGE", "short", 12.5),
        make_event(5, BASE_MS + 63_000, "okx", "PEPE", "short", 7.25),
        make_event(6, BASE_MS - 3_600_000, "okx", "BTC", "long", 1e6),  # too late: never counts
    ]
    apply(aggregation, counters, first, offset=0)
    apply(aggregation, counters, first, offset=0)  # delivered again after a crash: no change
    # half a batch already in the state (its first bucket), the rest not: only the rest counts
    second = [
        make_event(7, BASE_MS + 3_000, "binance", "BTC", "short", 1_000.0),  # bucket 0 (held)
        make_event(8, BASE_MS + 125_000, "binance", "BTC", "short", 2_000.0),  # bucket 2 (new)
    ]
    changed, _ = aggregation.apply_batch(second[:1], 1, BASE_MS + 10 * RESOLUTION_MS)
    assert list(changed) == [BASE_MS // RESOLUTION_MS]
    counters.count(second[:1])  # the process that applied bucket 0 counted it, then died
    apply(aggregation, counters, second, offset=1)
    got = scraped(counters)
    assert got == {
        ("liqstream_liquidated_usd_total", "binance", "BTC", "long"): 150_000.75,
        ("liqstream_liquidated_usd_total", "binance", "BTC", "short"): 3_000.0,
        ("liqstream_liquidated_usd_total", "bybit", "ETH", "short"): 3_000.125,
        ("liqstream_liquidated_usd_total", "bybit", OTHER, "short"): 12.5,
        ("liqstream_liquidated_usd_total", "okx", OTHER, "short"): 7.25,
        ("liqstream_liquidations_total", "binance", "BTC", "long"): 2,
        ("liqstream_liquidations_total", "binance", "BTC", "short"): 2,
        ("liqstream_liquidations_total", "bybit", "ETH", "short"): 1,
        ("liqstream_liquidations_total", "bybit", OTHER, "short"): 1,
        ("liqstream_liquidations_total", "okx", OTHER, "short"): 1,
    }
    # the counters sum to the market's totals, event by event
    records = aggregation.snapshot(BASE_MS + 10 * RESOLUTION_MS)
    scope = (None, None, "1h")
    (market,) = [r for r in records if (r["exchange"], r["coin"], r["window"]) == scope]
    usd = sum(v for k, v in got.items() if k[0] == "liqstream_liquidated_usd_total")
    orders = sum(v for k, v in got.items() if k[0] == "liqstream_liquidations_total")
    assert usd == market["total_usd"] and orders == market["count"] == 7


def test_top_coins_rank_by_usd_of_the_window_then_name() -> None:
    sums = {
        "*|*": {"1h": ScopeSums(900, 900, 9, 9, None)},
        "*|BTC": {"1h": ScopeSums(500, 100, 3, 1, None)},
        "*|ETH": {"1h": ScopeSums(0, 600, 0, 2, None)},  # ties BTC: by name
        "*|SOL": {"1h": ScopeSums(10, 0, 1, 0, None), "5m": ScopeSums(10_000, 0, 1, 0, None)},
        "*|XRP": {"5m": ScopeSums(1, 0, 1, 0, None)},  # nothing in 1h
        "binance|*": {"1h": ScopeSums(10_000, 0, 5, 0, None)},  # exchange scopes are no coins
        "binance|DOGE": {"1h": ScopeSums(10_000, 0, 5, 0, None)},
    }
    assert top_coins(sums, "1h", 2) == ["BTC", "ETH"]
    assert top_coins(sums, "1h", 10) == ["BTC", "ETH", "SOL"]
    assert top_coins(sums, "5m", 10) == ["SOL", "XRP"]


def test_coin_labels_are_kept_once_given_and_bounded() -> None:
    counters = LiquidationCounters(top=2, max_labels=3)
    minute = 60_000
    counters.rank(
        {
            "*|BTC": {"24h": ScopeSums(5, 0, 1, 0, None)},
            "*|ETH": {"24h": ScopeSums(4, 0, 1, 0, None)},
        },
        "24h",
        0,
    )
    assert counters.labelled == {"BTC", "ETH"}
    # within the rank interval nothing changes once `top` coins have labels
    counters.rank({"*|SOL": {"24h": ScopeSums(50, 0, 1, 0, None)}}, "24h", minute - 1)
    assert counters.labelled == {"BTC", "ETH"}
    # SOL and DOGE overtake ETH: SOL joins, ETH keeps its label, DOGE finds no room left
    ranked = {
        "*|SOL": {"24h": ScopeSums(50, 0, 1, 0, None)},
        "*|DOGE": {"24h": ScopeSums(40, 0, 1, 0, None)},
        "*|BTC": {"24h": ScopeSums(5, 0, 1, 0, None)},
        "*|ETH": {"24h": ScopeSums(4, 0, 1, 0, None)},
    }
    counters.rank(ranked, "24h", minute)
    assert counters.labelled == {"BTC", "ETH", "SOL"}
    counters.rank(ranked, "24h", 10 * minute)
    assert counters.labelled == {"BTC", "ETH", "SOL"}
    counters.count([make_event(1, 0, "okx", "DOGE", "long", 1.0)])
    counters.count([make_event(2, 0, "okx", "ETH", "long", 1.0)])
    got = scraped(counters)
    assert got[("liqstream_liquidations_total", "okx", OTHER, "long")] == 1
    assert got[("liqstream_liquidations_total", "okx", "ETH", "long")] == 1


def test_a_new_process_labels_nothing_until_it_ranks_then_fills_its_top_at_once() -> None:
    counters = LiquidationCounters(top=2)
    counters.count([make_event(1, 0, "okx", "BTC", "long", 2.5)])
    assert scraped(counters) == {
        ("liqstream_liquidated_usd_total", "okx", OTHER, "long"): 2.5,
        ("liqstream_liquidations_total", "okx", OTHER, "long"): 1,
    }
    counters.rank({}, "24h", 0)  # nothing ranked yet (a fresh start)
    counters.rank(
        {"*|BTC": {"24h": ScopeSums(5, 0, 1, 0, None)}}, "24h", 1_000
    )  # not a minute later
    assert counters.labelled == {"BTC"}
    counters.rank({"*|ETH": {"24h": ScopeSums(5, 0, 1, 0, None)}}, "24h", 2_000)
    assert counters.labelled == {"BTC", "ETH"}


def micro_sums(samples: dict, name: str) -> dict[tuple[str, str], int]:
    """{(exchange, side): sum over coin labels} of one counter, in micro-dollars or orders."""
    sums: dict[tuple[str, str], int] = {}
    for (sample, exchange, _coin, side), value in samples.items():
        if sample == name:
            scale = 1_000_000 if name == "liqstream_liquidated_usd_total" else 1
            sums[exchange, side] = sums.get((exchange, side), 0) + round(value * scale)
    return sums


def truth(events: list) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    usd: dict[tuple[str, str], int] = {}
    orders: dict[tuple[str, str], int] = {}
    for event in events:
        key = (event.exchange, event.side)
        usd[key] = usd.get(key, 0) + int(event.notional_usd * 1_000_000 + 0.5)
        orders[key] = orders.get(key, 0) + 1
    return usd, orders


async def scrape(worker: Any) -> dict:
    url = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(("liqstream_liquidated_usd", "liqstream_liquidations")):
                labels = sample.labels
                key = (sample.name, labels["exchange"], labels["coin"], labels["side"])
                samples[key] = sample.value
    return samples


@pytest.mark.kafka
async def test_a_worker_counts_each_event_once_by_exchange_and_side(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """On real Kafka: duplicates produced again count once; after a restart the new process
    counts only what it applies (its counters start at zero, as Prometheus expects)."""
    from tests.worker.test_worker_kafka import (
        Totals,
        Worker,
        produce,
        recent_events,
        worker_settings,
    )

    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    first = recent_events(1_500, seed=41)
    await produce(settings, first + first[:300])  # 300 duplicates: dropped in stage one
    worker = Worker(settings, tmp_path, "w").start()
    try:
        async with Totals(settings) as totals:
            await totals.wait_for_count(1_500)
            samples = await scrape(worker)
            usd, orders = truth(first)
            assert micro_sums(samples, "liqstream_liquidated_usd_total") == usd
            assert micro_sums(samples, "liqstream_liquidations_total") == orders
            coins = {key[2] for key in samples}
            assert OTHER in coins or len(coins) <= 20  # the top coins, others as `other`
            worker.stop(signal.SIGTERM)

            second = recent_events(700, seed=42)
            await produce(settings, second)
            worker.start()
            await totals.wait_for_count(2_200)
            samples = await scrape(worker)
            usd, orders = truth(second)
            assert micro_sums(samples, "liqstream_liquidated_usd_total") == usd
            assert micro_sums(samples, "liqstream_liquidations_total") == orders
    finally:
        worker.stop(signal.SIGKILL)
