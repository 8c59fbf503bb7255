"""The engine's hot path alone, no Kafka: CPU seconds per event as the worker's agent spends
them (`python -m bench.engine [EVENTS]`).

Batches of 500 events (an hour of them over 2,000 (venue, symbol) pairs, as the recovery
bench's day is spread) go through `Aggregation.apply_batch` with the demo rules evaluated
after each event, every changed bucket is encoded for the table, totals are published every
fourth batch; then every bucket is decoded again, as a restart does. CPU time (process time),
so that other work on a shared machine skews it less than wall time would.
"""

from __future__ import annotations

import json
import random
import sys
import time
from typing import Any

from bench.synthetic import EXCHANGES, linear_event
from stream.config import load_settings
from stream.demo import RULES
from stream.engine.aggregation import Aggregation
from stream.engine.buckets import decode_bucket, encode_bucket
from stream.engine.evaluator import RuleEvaluator
from stream.engine.rules import parse_rules
from stream.worker.memory import tune_gc

START_MS = 1_700_000_000_000
SPAN_MS = 3_600_000
BATCH = 500


def hour_of_events(count: int, coins: int = 250, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events = []
    for n in range(count):
        coin = f"C{rng.randrange(coins)}"
        price = rng.uniform(0.5, 500.0)
        notional = rng.lognormvariate(8.5, 1.6)
        ts = START_MS + n * SPAN_MS // count
        exchange = EXCHANGES[n % len(EXCHANGES)]
        events.append(linear_event(rng, f"hp-{n}", exchange, coin, price, notional, ts).to_dict())
    return events


def measure(count: int) -> dict[str, float]:
    tune_gc()  # as the worker runs
    settings = load_settings()
    events = hour_of_events(count)
    aggregation = Aggregation(settings.windows_ms, settings.resolution_ms)
    rules = parse_rules(RULES.read_text(), settings.windows_ms, settings.resolution_ms)
    evaluator = RuleEvaluator(rules, aggregation)
    aggregation.load({}, START_MS)
    encoded = 0
    began = time.process_time()
    for n, first in enumerate(range(0, count, BATCH)):
        batch = events[first : first + BATCH]
        now = batch[-1]["ts"] + 50
        evaluator.advance(now)
        changed, _ = aggregation.apply_batch(batch, n, now, evaluator.after_event)
        evaluator.drain()
        encoded += sum(len(encode_bucket(value)) for value in changed.values())
        if n % 4 == 0:
            list(aggregation.publish(now))
    hot_s = time.process_time() - began
    stored = [encode_bucket(value) for value in aggregation.buckets.values()]
    began = time.process_time()
    for value in stored:
        decode_bucket(value)
    return {
        "events": count,
        "cpu_s": round(hot_s, 2),
        "events_per_cpu_s": round(count / hot_s),
        "encoded_mb": round(encoded / 1e6),
        "decode_all_cpu_s": round(time.process_time() - began, 3),
    }


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
