"""Canonical coin names shared by every venue parser.

Venues quote some small-priced coins per 1000 (or a million) units (`1000PEPEUSDT`,
`kPEPE`) and BitMEX calls bitcoin XBT. Events carry the real coin, with price and quantity
rescaled so that the notional is unchanged.
"""

from __future__ import annotations

import re

_ALIASES = {"XBT": "BTC"}
_NUMERIC_PREFIX = re.compile(r"^(1000000|100000|10000|1000|100)(?=[A-Z])")
# Hyperliquid/dYdX style: a lowercase k means 1000 units (kPEPE, kSHIB).
_KILO_PREFIX = re.compile(r"^k(?=[A-Z]{2,})")


def canonical_coin(base: str) -> tuple[str, int]:
    """Return (coin, units per quoted unit): `1000PEPE` -> ("PEPE", 1000), `XBT` -> ("BTC", 1).

    A quoted price is per `units` coins and a quoted quantity counts lots of `units` coins.
    """
    units = 1
    match = _NUMERIC_PREFIX.match(base)
    if match and len(base) > len(match.group(1)):
        units = int(match.group(1))
        base = base[len(match.group(1)) :]
    elif _KILO_PREFIX.match(base):
        units = 1000
        base = base[1:]
    coin = base.upper()
    return _ALIASES.get(coin, coin), units


def coin_named(text: str) -> str:
    """The coin a person means, in any case, by a venue's name for it: `xbt`, `1000pepe` and
    `kPEPE` (Hyperliquid's kilo prefix, the one case-sensitive form) are BTC and PEPE."""
    text = text.strip()
    return canonical_coin(text if text[:1] == "k" and text[1:].isupper() else text.upper())[0]
