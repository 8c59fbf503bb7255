"""`parsing.amounts`, the one computation of coins and USD, on hand-computed cases."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from stream.collectors.parsing import Amounts, amounts
from stream.collectors.venue import Instrument

REL = 1e-12


def approx(price: float, quantity: float, notional_usd: float) -> Amounts:
    return Amounts(
        pytest.approx(price, rel=REL),
        pytest.approx(quantity, rel=REL),
        pytest.approx(notional_usd, rel=REL),
    )


def test_linear_contracts_of_a_fraction_of_a_coin() -> None:
    """OKX BTC-USDT-SWAP: 0.01 BTC per contract; 3 contracts at 100,000 = 0.03 BTC, 3,000 USD."""
    swap = Instrument("BTC-USDT-SWAP", "BTC", "USDT", "linear", 0.01)
    assert amounts(swap, 3, 100_000.0) == approx(100_000.0, 0.03, 3_000.0)


def test_a_1000_prefixed_symbol_counts_lots_of_1000_coins() -> None:
    """Binance 1000PEPEUSDT: 5,000 lots at 0.012 USDT per lot = 5,000,000 PEPE at 0.000012,
    60 USD."""
    pepe = Instrument("1000PEPEUSDT", "PEPE", "USDT", "linear", 1.0, 1000)
    assert amounts(pepe, 5_000, 0.012) == approx(0.000012, 5_000_000.0, 60.0)


def test_inverse_contracts_are_usd_each() -> None:
    """Binance COIN-M BTCUSD_PERP: 100 USD per contract; 7 at 50,000 = 700 USD, 0.014 BTC."""
    perp = Instrument("BTCUSD_PERP", "BTC", "USD", "inverse", 100.0)
    assert amounts(perp, 7, 50_000.0) == approx(50_000.0, 0.014, 700.0)
    xbtusd = Instrument("XBTUSD", "BTC", "USD", "inverse", 1.0)  # BitMEX: 1 USD a contract
    assert amounts(xbtusd, 25_000, 62_500.0) == approx(62_500.0, 0.4, 25_000.0)


def test_an_inverse_contract_at_price_zero_has_no_quantity() -> None:
    """The schema then names the bad price instead of a ZeroDivisionError here."""
    perp = Instrument("BTCUSD_PERP", "BTC", "USD", "inverse", 100.0)
    value = amounts(perp, 7, 0.0)
    assert math.isnan(value.quantity) and value.notional_usd == 700.0


def test_quanto_contracts_are_worth_the_price_times_the_settlement_rate() -> None:
    """BitMEX ETHUSD: 100 satoshi (0.000001 XBT) per contract per USD of price; 10 contracts
    at 2,000 with XBTUSD at 50,000 = 10 x 0.000001 x 2,000 x 50,000 = 1,000 USD, 0.5 ETH."""
    ethusd = Instrument("ETHUSD", "ETH", "XBT", "linear", 0.000001)
    assert amounts(ethusd, 10, 2_000.0, settle_usd=50_000.0) == approx(2_000.0, 0.5, 1_000.0)


def test_an_option_is_worth_its_premium() -> None:
    """Deribit: 2 BTC of a call bought at a premium of 1,500 USD per BTC = 3,000 USD."""
    call = Instrument("BTC-27DEC26-100000-C", "BTC", "USD", "linear", 1.0)
    assert amounts(call, 2, 1_500.0, premium=True) == approx(1_500.0, 2.0, 3_000.0)


def test_sizes_already_in_coins_ignore_the_contract_size() -> None:
    """HTX's `amount`, Lighter's and dYdX's `size` count coins (lots of `units`), whatever the
    contract size: 0.5 BTC at 60,000 = 30,000 USD."""
    swap = Instrument("BTC-USDT", "BTC", "USDT", "linear", 0.001)
    assert amounts(swap, 0.5, 60_000.0, in_contracts=False) == approx(60_000.0, 0.5, 30_000.0)


def test_a_venue_notional_is_taken_as_sent() -> None:
    """HTX's `trade_turnover` and Lighter's `usd_amount` are the venue's own figure."""
    swap = Instrument("BTC-USDT", "BTC", "USDT", "linear", 0.001)
    value = amounts(swap, 0.5, 60_000.0, in_contracts=False, notional_usd="30000.5")
    assert value == Amounts(60_000.0, 0.5, "30000.5")


def test_a_quote_amount_alone_gives_the_quantity() -> None:
    """Bitget sends only the quote amount: 3,000 USDT at 60,000 = 0.05 BTC; 60 USDT of
    1000PEPE at 0.012 per lot = 5,000 lots = 5,000,000 PEPE."""
    btc = Instrument("BTCUSDT", "BTC", "USDT", "linear")
    assert amounts(btc, None, 60_000.0, notional_usd=3_000.0) == approx(60_000.0, 0.05, 3_000.0)
    pepe = Instrument("1000PEPEUSDT", "PEPE", "USDT", "linear", 1.0, 1000)
    expected = approx(0.000012, 5_000_000.0, 60.0)
    assert amounts(pepe, None, 0.012, notional_usd=60.0) == expected


def test_every_venue_takes_its_notional_from_amounts() -> None:
    """No venue module or node source computes its own USD figure: an event's `notional_usd=`
    is `amounts`', and what goes into `amounts` is a figure as the venue sent it."""
    root = Path(__file__).resolve().parents[2] / "stream"
    sources = [*(root / "collectors").glob("*.py"), *(root / "node_sources").glob("*.py")]
    for path in sources:
        if path.name == "parsing.py":
            continue
        for expression in re.findall(r"\bnotional_usd=([^,)\n]+)", path.read_text()):
            assert not re.search(r"[*/+-]", expression), f"{path.name}: {expression}"
