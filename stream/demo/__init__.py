"""The demo session `liqstream dev` replays: a liquidation cascade across every venue.

Frames are rendered live by each venue module (its own frame format, contract sizes and
symbols), with event times of "now", so the worker's wall-clock windows count them. The first
`CASCADE_S` seconds are a sharp drop: mostly longs, larger orders, a few very large ones on
BTC and ETH. After that the market calms down to two-sided background activity. Deterministic
per feed and seed, so two runs tell the same story.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Feed, Instrument
from stream.fake_exchange import REFERENCE_PRICES_USD

RULES = Path(__file__).with_name("rules.yaml")
CASCADE_S = 90.0
_CASCADE_COINS = {"BTC": 5, "ETH": 3, "SOL": 2, "DOGE": 1, "PEPE": 1, "XRP": 1}


def demo_frames(feed: Feed, seed: int = 7, *, started: float | None = None) -> Iterator[str]:
    """Endless frames for `feed`: the cascade first, then background activity."""
    if feed.render is None:
        raise ValueError(f"{feed.name} cannot render frames")
    instruments = list(bundled_snapshot(feed.name).values()) or [
        Instrument(symbol="BTCUSDT", coin="BTC", quote="USDT", contract_type="linear")
    ]
    weighted = [i for i in instruments for _ in range(_CASCADE_COINS.get(i.coin, 0))]
    rng = random.Random(f"{feed.name}:{seed}")
    start = time.monotonic() if started is None else started
    seq = 0
    drop = 0.0
    while True:
        seq += 1
        elapsed = time.monotonic() - start
        cascade = elapsed < CASCADE_S
        if cascade:
            instrument = rng.choice(weighted or instruments)
            side = "long" if rng.random() < 0.88 else "short"
            notional = rng.lognormvariate(10.2, 1.3)  # median about $27k
            if rng.random() < 0.02 and instrument.coin in ("BTC", "ETH"):
                side, notional = "long", rng.uniform(1.5e6, 8e6)  # the whales of the day
            drop = min(0.08, drop + 0.0005)  # prices slide while it lasts
        else:
            instrument = rng.choice(instruments)
            side = rng.choice(("long", "short"))
            notional = rng.lognormvariate(8.5, 1.4)
            drop = max(0.0, drop - 0.0002)
        reference = REFERENCE_PRICES_USD.get(instrument.coin, 1.0) * (1 - drop)
        price = reference * rng.uniform(0.995, 1.005)
        yield feed.render(
            instrument, side, price, notional / price, time.time_ns() // 1_000_000, seq
        )
