"""The demo session's orders: a long squeeze across every venue, then a quiet market.

Stored as a seeded generator rather than recorded frames: what it yields is venue-neutral
(`DemoOrder`: offset, feed, symbol, side, price, coins), and each venue module's own `render`
turns an order into that venue's frame at replay time (`stream.demo.replay`). Same seed,
same session, on every machine.

The story, over `CASCADE_MS`: prices slide about 7 % (altcoins more) for a minute while
liquidations of longs accelerate, with a handful of very large orders (`WHALES`); then prices
bounce and some shorts are squeezed. After that, `background` repeats every `BACKGROUND_MS`:
a few small two-sided liquidations per minute and venue.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument

SEED = 20251010
CASCADE_MS = 90_000
BACKGROUND_MS = 120_000

# Share of the market's liquidations per feed (relative weights, roughly each venue's size).
FEED_WEIGHTS: Mapping[str, float] = {
    "binance-usdm": 30,
    "binance-coinm": 4,
    "bybit-linear": 20,
    "bybit-inverse": 4,
    "okx": 12,
    "bitmex": 5,
    "deribit": 4,
    "htx-linear": 4,
    "htx-coin": 2,
    "htx-futures": 2,
    "gate": 5,
    "gate-btc": 3,
    "gate-usd1": 2,
    "bitget": 5,
    "bitfinex": 2,
    "kraken": 2,
    "dydx": 2,
    "aster": 6,
    "lighter": 4,
    "poloniex": 2,
    "zoomex-linear": 3,
    "zoomex-inverse": 2,
}


@dataclass(frozen=True, slots=True)
class Coin:
    weight: float  # share of the liquidations
    price_usd: float  # before the drop
    beta: float  # how much harder than BTC it falls
    size: float  # typical order size relative to BTC


COINS: Mapping[str, Coin] = {
    "BTC": Coin(42, 100_000.0, 1.0, 1.0),
    "ETH": Coin(26, 3_500.0, 1.3, 0.8),
    "SOL": Coin(12, 180.0, 1.6, 0.5),
    "DOGE": Coin(8, 0.35, 1.8, 0.35),
    "PEPE": Coin(6, 0.000012, 2.2, 0.25),
    "XRP": Coin(6, 2.4, 1.5, 0.35),
}

# (offset_ms, feed, symbol, side, notional_usd): the orders the day is remembered for.
WHALES: tuple[tuple[int, str, str, str, float], ...] = (
    (12_400, "binance-usdm", "BTCUSDT", "long", 3_140_000.0),
    (24_100, "bybit-linear", "ETHUSDT", "long", 2_380_000.0),
    (33_700, "okx", "BTC-USDT-SWAP", "long", 5_600_000.0),
    (41_200, "bitmex", "XBTUSD", "long", 12_400_000.0),
    (47_900, "binance-usdm", "SOLUSDT", "long", 1_720_000.0),
    (52_300, "deribit", "BTC-PERPETUAL", "long", 4_210_000.0),
    (74_600, "bybit-linear", "BTCUSDT", "short", 1_310_000.0),
)
LARGEST_ORDINARY_USD = 900_000.0  # only whales pass $1M, so single-order alerts name them


@dataclass(frozen=True, slots=True)
class DemoOrder:
    """One liquidation of the session, venue-neutral: `quantity` in coins, `price` in USD per
    coin, `offset_ms` from the start of the session; `feed` and `symbol` say who renders it."""

    offset_ms: int
    feed: str
    symbol: str
    side: str  # the position liquidated: "long" | "short"
    price: float
    quantity: float

    @property
    def notional_usd(self) -> float:
        return self.price * self.quantity


def drop_fraction(offset_ms: float) -> float:
    """How far BTC is below its starting price at `offset_ms` into the session (0.07 = 7 %)."""
    t_s = offset_ms / 1000
    if t_s < 60:
        return 0.07 * _smoothstep((t_s - 3) / 55)
    return 0.07 - 0.025 * _smoothstep((t_s - 60) / 30)  # the bounce


def cascade_rate_per_s(offset_ms: float) -> float:
    """Liquidations per second, all venues together, during the cascade."""
    t_s = offset_ms / 1000
    return 3 + 30 * math.exp(-(((t_s - 38) / 14) ** 2)) + 6 * math.exp(-(((t_s - 72) / 8) ** 2))


def long_probability(offset_ms: float) -> float:
    """While prices fall, longs die (the first ones all longs); on the bounce, shorts too."""
    if offset_ms < 10_000:
        return 1.0
    return 0.93 if offset_ms < 60_000 else 0.45


def price_usd(coin: str, offset_ms: float) -> float:
    spec = COINS[coin]
    return spec.price_usd * (1 - spec.beta * drop_fraction(min(offset_ms, CASCADE_MS)))


@functools.cache
def cascade(seed: int = SEED) -> tuple[DemoOrder, ...]:
    """The cascade's orders in time order, offsets in [0, CASCADE_MS)."""
    rng = random.Random(seed)
    peak = max(cascade_rate_per_s(ms) for ms in range(0, CASCADE_MS, 100))
    orders = []
    offset_s = 0.0
    while True:  # a Poisson process of varying rate, by thinning
        offset_s += rng.expovariate(peak)
        offset_ms = int(offset_s * 1000)
        if offset_ms >= CASCADE_MS:
            break
        if rng.random() * peak > cascade_rate_per_s(offset_ms):
            continue
        side = "long" if rng.random() < long_probability(offset_ms) else "short"
        orders.append(_order(rng, offset_ms, side, 14_000.0, sigma=1.5, noise=0.002))
    for offset_ms, feed, symbol, side, notional_usd in WHALES:
        instrument = _instruments(feed)[symbol]
        whale = DemoOrder(offset_ms, feed, symbol, side, price_usd(instrument.coin, offset_ms), 0.0)
        orders.append(_sized(instrument, whale, notional_usd))
    return tuple(sorted(orders, key=lambda order: order.offset_ms))


@functools.cache
def background(seed: int = SEED) -> tuple[DemoOrder, ...]:
    """One period of the quiet market after the cascade, offsets in [0, BACKGROUND_MS); every
    feed has at least two orders, so every venue stays visibly alive."""
    rng = random.Random(seed + 1)
    orders = []
    total_weight = sum(FEED_WEIGHTS.values())
    for feed, weight in FEED_WEIGHTS.items():
        for _ in range(max(2, round(180 * weight / total_weight))):
            offset_ms = rng.randrange(BACKGROUND_MS)
            side = rng.choice(("long", "short"))
            orders.append(_order(rng, offset_ms, side, 2_500.0, sigma=1.4, noise=0.003, feed=feed))
    return tuple(sorted(orders, key=lambda order: order.offset_ms))


def session(seed: int = SEED) -> Iterator[DemoOrder]:
    """Endless: the cascade, then the background period again and again, offsets growing."""
    yield from cascade(seed)
    start_ms = CASCADE_MS
    while True:
        for order in background(seed):
            yield replace(order, offset_ms=start_ms + order.offset_ms)
        start_ms += BACKGROUND_MS


def feed_session(feed: str, seed: int = SEED) -> Iterator[DemoOrder]:
    """The orders of one feed, endless like `session` (empty for a feed not in the demo)."""
    if feed not in FEED_WEIGHTS:
        return
    yield from (order for order in session(seed) if order.feed == feed)


def _order(
    rng: random.Random,
    offset_ms: int,
    side: str,
    median_usd: float,
    *,
    sigma: float,
    noise: float,
    feed: str | None = None,
) -> DemoOrder:
    coins = [coin for coin in COINS if feed is None or _has_coin(feed, coin)]
    coin = rng.choices(coins, [COINS[c].weight for c in coins])[0]
    if feed is None:
        feeds = [name for name in FEED_WEIGHTS if _has_coin(name, coin)]
        feed = rng.choices(feeds, [FEED_WEIGHTS[name] for name in feeds])[0]
    listed = [i for i in _instruments(feed).values() if i.coin == coin]
    # The first listed instrument of a coin is its main perpetual: it takes most of the flow.
    instrument = rng.choices(listed, [3] + [1] * (len(listed) - 1))[0]
    notional_usd = min(
        LARGEST_ORDINARY_USD, rng.lognormvariate(math.log(median_usd * COINS[coin].size), sigma)
    )
    price = price_usd(coin, offset_ms) * (1 + rng.uniform(-noise, noise))
    order = DemoOrder(offset_ms, feed, instrument.symbol, side, price, 0.0)
    return _sized(instrument, order, notional_usd)


def _sized(instrument: Instrument, order: DemoOrder, notional_usd: float) -> DemoOrder:
    """Set the quantity, in whole contracts where the venue counts in contracts, so that
    the frame a venue renders carries exactly this order's notional."""
    if instrument.contract_type == "inverse":  # contracts of `contract_size` USD
        contracts = max(1, round(notional_usd / instrument.contract_size))
        return replace(order, quantity=contracts * instrument.contract_size / order.price)
    lot = instrument.contract_size * instrument.units
    if lot < 1:  # contracts of a fraction of a coin (BitMEX XBTUSDT: 0.000001 BTC)
        return replace(order, quantity=max(1, round(notional_usd / order.price / lot)) * lot)
    return replace(order, quantity=notional_usd / order.price)


@functools.cache
def _instruments(feed: str) -> dict[str, Instrument]:
    return bundled_snapshot(feed)


def _has_coin(feed: str, coin: str) -> bool:
    return any(i.coin == coin for i in _instruments(feed).values())


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)
