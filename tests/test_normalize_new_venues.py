"""`liqstream normalize` on the documented (and captured) frames of the venues added by issue 13,
as a user runs it: Aster, Lighter, Poloniex and Zoomex (both feeds), with the instruments
bundled in the package. Amounts worked out by hand from each frame."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from stream.cli import main

FIXTURES = Path(__file__).parent / "collectors" / "fixtures"
RECEIVED_TS = 1_762_290_000_999

# (--exchange, fixture, [(symbol, coin, side, quantity, notional_usd, ts)])
CASES = [
    # SELL = the long was liquidated; z 0.014 BTC filled at ap 9910: 138.74 USD
    (
        "aster",
        "aster/documented.json",
        [("BTCUSDT", "BTC", "long", 0.014, 138.74, 1568014460893)],
    ),
    # BUY = a short; z 3200 ASTER of q 5000 filled so far, at ap 1.215: 3888 USD
    (
        "aster",
        "aster/asterusdt_short_partial.json",
        [("ASTERUSDT", "ASTER", "short", 3200.0, 3888.0, 1762290000100)],
    ),
    # the ordinary trade is skipped; the liquidation's taker bought (is_maker_ask true): a
    # short, 1.0034 ETH at 2769.77, usd_amount 2779.187218
    (
        "lighter",
        "lighter/captured_subscribed_eth_short.json",
        [("ETH:0", "ETH", "short", 1.0034, 2779.187218, 1790008326252)],
    ),
    # posSide BOTH and a BUY order: a short; 1 contract of 0.001 BTC at bkPx 94120.8368032
    (
        "poloniex",
        "poloniex/documented.json",
        [("BTC_USDT_PERP", "BTC", "short", 0.001, 94.1208368032, 1739367328421)],
    ),
    # S is the position side: Buy = long 1.25 ETH x 3312.4; Sell = short 0.4 ETH x 3340.1
    (
        "zoomex",
        "zoomex/linear_two_items.json",
        [
            ("ETHUSDT", "ETH", "long", 1.25, 4140.5, 1762290000150),
            ("ETHUSDT", "ETH", "short", 0.4, 1336.04, 1762290000420),
        ],
    ),
    # inverse: v is USD contracts, 12000 USD at 96000 = 0.125 BTC
    (
        "zoomex-inverse",
        "zoomex/inverse_btcusd.json",
        [("BTCUSD", "BTC", "long", 0.125, 12_000.0, 1762290000321)],
    ),
]


@pytest.mark.parametrize(("exchange", "fixture", "want"), CASES, ids=[c[1] for c in CASES])
def test_normalize_turns_the_venues_frames_into_the_expected_events(
    exchange: str, fixture: str, want: list[tuple]
) -> None:
    frame = orjson.dumps(orjson.loads((FIXTURES / fixture).read_bytes())) + b"\n"
    result = CliRunner().invoke(
        main, ["normalize", "--exchange", exchange, "--received-ts", str(RECEIVED_TS)], input=frame
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # no reject
    events = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert len(events) == len(want)
    for event, (symbol, coin, side, quantity, notional_usd, ts) in zip(events, want, strict=True):
        assert event["exchange"] == exchange.removesuffix("-inverse")
        assert (event["symbol"], event["coin"], event["side"], event["ts"]) == (
            symbol,
            coin,
            side,
            ts,
        )
        assert event["quantity"] == pytest.approx(quantity, rel=1e-12)
        assert event["notional_usd"] == pytest.approx(notional_usd, rel=1e-12)
        assert event["received_ts"] == RECEIVED_TS
