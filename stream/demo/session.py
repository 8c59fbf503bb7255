"""The demo session's orders: a long squeeze across every venue, then a quiet market.

Stored as a seeded generator rather than recorded frames: what it yields is venue-neutral
(`DemoOrder`: offset, feed, symbol, side, price, coins), and each venue module's own `render`
turns an order into that venue's frame at replay time (`stream.demo.replay`). Same seed,
same session, on every machine.

The story, over `CASCADE_MS`: prices slide about 7 % (altcoins more) for a minute while
liquidations of longs accelerate, with a handful of very large orders (`WHALES`); then prices
bounce and some shorts are squeezed. After that, `background` repeats every `BACKGROUND_MS`:
a few small two-sided liquidations per minute and venue.

A feed read from a node's files rather than a websocket (`NODE_FEED_WEIGHTS`: outside the
collector registry) gets orders of its own with the same story, at its share of the market
(`node_cascade`, `node_background`), so the websocket venues' session stays as it is.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace

from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument
from stream.node_sources import hyperliquid

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
# A feed not weighted above (a venue just added to the registry) still takes part in the demo.
DEFAULT_FEED_WEIGHT = 2.0


@functools.cache
def feed_weights() -> Mapping[str, float]:
    """Every registered feed's weight: `FEED_WEIGHTS`, then `DEFAULT_FEED_WEIGHT` for the rest,
    so adding a venue needs no line here (the listed feeds keep their order and so the seed's
    session)."""
    from stream.collectors.registry import FEEDS

    extra = {name: DEFAULT_FEED_WEIGHT for name in FEEDS if name not in FEED_WEIGHTS}
    return {**FEED_WEIGHTS, **extra}


# Feeds of `liqstream collect-node` (a node's fills files): the largest perp DEX by open
# interest, with the coins as its fills name them (kPEPE: thousands of PEPE).
NODE_FEED_WEIGHTS: Mapping[str, float] = {"hyperliquid-node": 8}
_NODE_COINS: Mapping[str, tuple[str, ...]] = {
    "hyperliquid-node": ("BTC", "ETH", "SOL", "DOGE", "kPEPE", "XRP"),
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
    orders = [
        _order(rng, offset_ms, side, 14_000.0, sigma=1.5, noise=0.002)
        for offset_ms, side in _cascade_times(rng, share=1.0)
    ]
    for offset_ms, feed, symbol, side, notional_usd in WHALES:
        instrument = instruments(feed)[symbol]
        whale = DemoOrder(offset_ms, feed, symbol, side, price_usd(instrument.coin, offset_ms), 0.0)
        orders.append(_sized(instrument, whale, notional_usd))
    return tuple(sorted(orders, key=lambda order: order.offset_ms))


def _cascade_times(rng: random.Random, share: float) -> Iterator[tuple[int, str]]:
    """(offset_ms, side) of the cascade's orders at `share` of the market's rate: a Poisson
    process of varying rate, by thinning (lazily: the caller draws from `rng` in between)."""
    peak = max(cascade_rate_per_s(ms) for ms in range(0, CASCADE_MS, 100)) * share
    offset_s = 0.0
    while True:
        offset_s += rng.expovariate(peak)
        offset_ms = int(offset_s * 1000)
        if offset_ms >= CASCADE_MS:
            return
        if rng.random() * peak > cascade_rate_per_s(offset_ms) * share:
            continue
        yield offset_ms, "long" if rng.random() < long_probability(offset_ms) else "short"


@functools.cache
def node_cascade(feed: str, seed: int = SEED) -> tuple[DemoOrder, ...]:
    """The cascade of a node feed, at its weight's share of the whole market's rate."""
    rng = random.Random(f"{seed}:{feed}")
    return tuple(
        _order(rng, offset_ms, side, 14_000.0, sigma=1.5, noise=0.002, feed=feed)
        for offset_ms, side in _cascade_times(rng, share=_node_share(feed))
    )


@functools.cache
def node_background(feed: str, seed: int = SEED) -> tuple[DemoOrder, ...]:
    """One quiet period of a node feed, as many orders as a registry feed of its weight."""
    rng = random.Random(f"{seed}:{feed}:background")
    orders = [
        _order(rng, rng.randrange(BACKGROUND_MS), side, 2_500.0, sigma=1.4, noise=0.003, feed=feed)
        for side in rng.choices(("long", "short"), k=max(2, round(180 * _node_share(feed))))
    ]
    return tuple(sorted(orders, key=lambda order: order.offset_ms))


def _node_share(feed: str) -> float:
    weight = NODE_FEED_WEIGHTS[feed]
    return weight / (sum(feed_weights().values()) + weight)


@functools.cache
def background(seed: int = SEED) -> tuple[DemoOrder, ...]:
    """One period of the quiet market after the cascade, offsets in [0, BACKGROUND_MS); every
    feed has at least two orders, so every venue stays visibly alive."""
    rng = random.Random(seed + 1)
    orders = []
    total_weight = sum(feed_weights().values())
    for feed, weight in feed_weights().items():
        for _ in range(max(2, round(180 * weight / total_weight))):
            offset_ms = rng.randrange(BACKGROUND_MS)
            side = rng.choice(("long", "short"))
            orders.append(_order(rng, offset_ms, side, 2_500.0, sigma=1.4, noise=0.003, feed=feed))
    return tuple(sorted(orders, key=lambda order: order.offset_ms))


def session(seed: int = SEED) -> Iterator[DemoOrder]:
    """Endless: the cascade, then the background period again and again, offsets growing."""
    return _looped(cascade(seed), background(seed))


def _looped(first: Iterable[DemoOrder], calm: tuple[DemoOrder, ...]) -> Iterator[DemoOrder]:
    yield from first
    start_ms = CASCADE_MS
    while True:
        for order in calm:
            yield replace(order, offset_ms=start_ms + order.offset_ms)
        start_ms += BACKGROUND_MS


def feed_session(feed: str, seed: int = SEED) -> Iterator[DemoOrder]:
    """The orders of one feed, endless like `session` (empty for a feed not in the demo)."""
    if feed in NODE_FEED_WEIGHTS:
        yield from _looped(node_cascade(feed, seed), node_background(feed, seed))
    elif feed in feed_weights():
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
        weights = feed_weights()
        feeds = [name for name in weights if _has_coin(name, coin)]
        feed = rng.choices(feeds, [weights[name] for name in feeds])[0]
    listed = [i for i in instruments(feed).values() if i.coin == coin]
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
def instruments(feed: str) -> dict[str, Instrument]:
    """The instruments the demo trades on `feed`, by symbol: its bundled snapshot, or for a
    node feed its coins' contract rules as the node's fills give them."""
    if feed in _NODE_COINS:
        found = (hyperliquid.instrument(coin) for coin in _NODE_COINS[feed])
        return {i.symbol: i for i in found if i is not None}
    return bundled_snapshot(feed)


def _has_coin(feed: str, coin: str) -> bool:
    return any(i.coin == coin for i in instruments(feed).values())


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)
