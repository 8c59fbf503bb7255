"""Synthetic normalized events for benchmarks: realistic spread of venues, coins and sizes."""

from __future__ import annotations

import random
from collections.abc import Iterator

from stream.schema import LiquidationEvent, make_event

EXCHANGES = ("binance", "bybit", "okx", "bitmex", "deribit", "htx", "gate", "bitfinex")
COINS = {
    "BTC": 100_000.0,
    "ETH": 3_500.0,
    "SOL": 180.0,
    "XRP": 2.4,
    "DOGE": 0.35,
    "PEPE": 0.000012,
    "BNB": 650.0,
    "ADA": 0.9,
    "AVAX": 40.0,
    "LINK": 22.0,
}


def synthetic_events(
    count: int, *, start_ms: int, span_ms: int, seed: int = 1
) -> Iterator[LiquidationEvent]:
    """`count` events with ts spread evenly over [start_ms, start_ms + span_ms)."""
    rng = random.Random(seed)
    coins = list(COINS)
    for n in range(count):
        exchange = rng.choice(EXCHANGES)
        coin = rng.choice(coins)
        price = COINS[coin] * rng.uniform(0.97, 1.03)
        notional = rng.lognormvariate(8.5, 1.6)
        ts = start_ms + (n * span_ms) // max(count, 1)
        yield linear_event(rng, f"bench-{seed}-{n}", exchange, coin, price, notional, ts)


def linear_event(
    rng: random.Random,
    event_id: str,
    exchange: str,
    coin: str,
    price: float,
    notional: float,
    ts: int,
) -> LiquidationEvent:
    """One linear USDT event, 60 % of them longs, received 50 ms after it happened."""
    return make_event(
        id=event_id,
        exchange=exchange,
        symbol=f"{coin}USDT",
        coin=coin,
        quote="USDT",
        contract_type="linear",
        side="long" if rng.random() < 0.6 else "short",
        price=price,
        quantity=notional / price,
        notional_usd=notional,
        ts=ts,
        received_ts=ts + 50,
    )
