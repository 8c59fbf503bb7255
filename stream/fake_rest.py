"""A local REST server with the venues' instrument endpoints, paginated as the venues do.

Listings are realistic in size (hundreds to more than a thousand symbols) and mutable, so a
test or a demo can list a symbol later or delist one. Each endpoint follows its venue's
documentation:

- Bybit v5 `GET /v5/market/instruments-info` ("Get Instruments Info"): `category` linear or
  inverse; `limit` 1..1000 (default 500; outside that range `retCode` 10001, "params error");
  `cursor` from the previous page's `result.nextPageCursor`, which is empty on the last page.
- OKX v5 `GET /api/v5/public/instruments` ("Get instruments"): `instType` required (SWAP,
  FUTURES, ...); every instrument of that type in one answer, `{"code":"0","data":[...]}`;
  a missing or unknown `instType` is `code` 51000 ("Parameter instType error").
- dYdX v4 Indexer `GET /v4/perpetualMarkets`: `{"markets": {ticker: {...}}}`, all markets.
- Kraken Futures `GET /derivatives/api/v3/instruments`: `{"result":"success",
  "instruments":[...]}`, all instruments.
- HTX Coin-M futures `GET /api/v1/contract_contract_info` ("Get Contract Info"):
  `{"status":"ok","data":[...],"ts":...}`, every contract in one answer (this week, next week,
  quarter per coin; `contract_size` USD per contract, 100 for BTC, 10 otherwise).

`serve_listings` fills the endpoints for a set of feeds: each feed's bundled instruments (so
frames rendered from them parse to the same amounts) plus synthetic ones, as `liqstream dev`
and `liqstream fake-exchange` serve them. Run `python -m stream.fake_rest --bybit-linear 1105`
to serve one from a shell.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import string
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from stream.collectors.htx import delivery_coin
from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Instrument

BYBIT_MAX_LIMIT = 1000
BYBIT_DEFAULT_LIMIT = 500
_MAJORS = ("BTC", "ETH", "SOL", "XRP", "DOGE", "1000PEPE", "BNB", "ADA", "LINK", "AVAX")


def synthetic_bases(count: int) -> list[str]:
    """`count` distinct base coins: real majors first, then three- to four-letter names."""
    names = list(_MAJORS[:count])
    for length in (3, 4):
        for letters in itertools.product(string.ascii_uppercase, repeat=length):
            if len(names) >= count:
                return names
            name = "".join(letters)
            if name not in names:
                names.append(name)
    return names


def bybit_row(symbol: str, base: str, quote: str, category: str) -> dict[str, Any]:
    """One row of instruments-info, with the fields the docs list for linear/inverse."""
    inverse = category == "inverse"
    return {
        "symbol": symbol,
        "contractType": "InversePerpetual" if inverse else "LinearPerpetual",
        "status": "Trading",
        "baseCoin": base,
        "quoteCoin": quote,
        "settleCoin": base if inverse else quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
        "lotSizeFilter": {"maxOrderQty": "100.000", "minOrderQty": "0.001", "qtyStep": "0.001"},
        "fundingInterval": 480,
    }


def bybit_rows(count: int, category: str = "linear") -> list[dict[str, Any]]:
    quote = "USD" if category == "inverse" else "USDT"
    return [bybit_row(f"{b}{quote}", b, quote, category) for b in synthetic_bases(count)]


def okx_row(inst_id: str, inst_type: str, ct_val: str, ct_type: str) -> dict[str, Any]:
    base, quote = inst_id.split("-")[:2]
    return {
        "instType": inst_type,
        "instId": inst_id,
        "uly": f"{base}-{quote}",
        "instFamily": f"{base}-{quote}",
        "settleCcy": base if ct_type == "inverse" else quote,
        "ctVal": ct_val,
        "ctMult": "1",
        "ctValCcy": "USD" if ct_type == "inverse" else base,
        "ctType": ct_type,
        "state": "live",
    }


class FakeRest:
    """The instrument endpoints of Bybit, OKX, dYdX and Kraken on one local port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.bybit: dict[str, list[dict[str, Any]]] = {"linear": [], "inverse": []}
        self.okx: dict[str, list[dict[str, Any]]] = {"SWAP": [], "FUTURES": []}
        self.dydx_markets: list[str] = []
        self.kraken: list[dict[str, Any]] = []
        self.htx_futures: list[dict[str, Any]] = []
        self.requests: list[str] = []  # path and query of every request, in order
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, feed_name: str) -> str:
        """The `--instruments-url` of a feed served here."""
        paths = {
            "bybit-linear": "/v5/market/instruments-info?category=linear&limit=1000",
            "bybit-inverse": "/v5/market/instruments-info?category=inverse&limit=1000",
            "okx": "/api/v5/public/instruments",
            "dydx": "/v4/perpetualMarkets",
            "kraken": "/derivatives/api/v3/instruments",
            "htx-futures": "/api/v1/contract_contract_info",
        }
        return self.base + paths[feed_name]

    async def start(self) -> str:
        app = web.Application()
        app.router.add_get("/v5/market/instruments-info", self._bybit)
        app.router.add_get("/api/v5/public/instruments", self._okx)
        app.router.add_get("/v4/perpetualMarkets", self._dydx)
        app.router.add_get("/derivatives/api/v3/instruments", self._kraken)
        app.router.add_get("/api/v1/contract_contract_info", self._htx_futures)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self.base

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _seen(self, request: web.Request) -> None:
        self.requests.append(request.path_qs)

    async def _bybit(self, request: web.Request) -> web.Response:
        self._seen(request)
        category = request.query.get("category", "")
        try:
            limit = int(request.query.get("limit", BYBIT_DEFAULT_LIMIT))
        except ValueError:
            limit = 0
        if category not in self.bybit or not 1 <= limit <= BYBIT_MAX_LIMIT:
            return web.json_response({"retCode": 10001, "retMsg": "params error", "result": {}})
        rows = sorted(self.bybit[category], key=lambda row: row["symbol"])
        start = 0
        cursor = request.query.get("cursor", "")
        if cursor:  # opaque to clients; here "first=<symbol>&last=<symbol>", percent-encoded
            last = unquote(unquote(cursor)).rpartition("last=")[2]
            start = next((i + 1 for i, r in enumerate(rows) if r["symbol"] == last), len(rows))
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        next_cursor = (
            f"first%3D{page[0]['symbol']}%26last%3D{page[-1]['symbol']}" if more and page else ""
        )
        result = {"category": category, "list": page, "nextPageCursor": next_cursor}
        return web.json_response(
            {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 0}
        )

    async def _okx(self, request: web.Request) -> web.Response:
        self._seen(request)
        inst_type = request.query.get("instType", "")
        if inst_type not in self.okx:
            return web.json_response(
                {"code": "51000", "msg": "Parameter instType error", "data": []}
            )
        return web.json_response({"code": "0", "msg": "", "data": self.okx[inst_type]})

    async def _dydx(self, request: web.Request) -> web.Response:
        self._seen(request)
        markets = {
            ticker: {"ticker": ticker, "status": "ACTIVE", "clobPairId": str(index)}
            for index, ticker in enumerate(self.dydx_markets)
        }
        return web.json_response({"markets": markets})

    async def _kraken(self, request: web.Request) -> web.Response:
        self._seen(request)
        return web.json_response({"result": "success", "instruments": self.kraken})

    async def _htx_futures(self, request: web.Request) -> web.Response:
        self._seen(request)
        return web.json_response({"status": "ok", "data": self.htx_futures, "ts": 0})


HTX_DELIVERIES = (("this_week", "261204"), ("next_week", "261211"), ("quarter", "261225"))


def htx_futures_row(
    coin: str, contract_type: str, delivery: str, contract_size: float | None = None
) -> dict[str, Any]:
    """One row of contract_contract_info (the fields HTX documents)."""
    return {
        "symbol": coin,
        "contract_code": f"{coin}{delivery}",
        "contract_type": contract_type,
        "contract_size": contract_size or (100.0 if coin == "BTC" else 10.0),
        "price_tick": 0.01,
        "delivery_date": f"20{delivery}",
        "delivery_time": "1796371200000",
        "create_date": "20261120",
        "contract_status": 1,
        "settlement_time": "1796371200000",
    }


def htx_futures_rows(coins: int) -> list[dict[str, Any]]:
    """Three dated contracts for each of `coins` coins (letters only: HTX futures coins)."""
    bases = [b for b in synthetic_bases(coins + 1) if b.isalpha()][:coins]
    return [htx_futures_row(coin, kind, date) for coin in bases for kind, date in HTX_DELIVERIES]


def kraken_rows(count: int) -> list[dict[str, Any]]:
    """Multi-collateral perpetuals `PF_<base>USD` (Kraken writes BTC as XBT)."""
    bases = ["XBT" if b == "BTC" else b for b in synthetic_bases(count)]
    return [kraken_row(f"PF_{base}USD") for base in bases]


def kraken_row(symbol: str, contract_size: float = 1.0) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "type": "flexible_futures" if symbol.startswith("PF_") else "futures_inverse",
        "tradeable": True,
        "contractSize": contract_size,
    }


# Listings `serve_listings` adds to each feed's bundled instruments: realistic sizes (Bybit
# linear past one 1,000-row page, dYdX past one 32-market connection).
SYNTHETIC_COUNTS = {
    "bybit-linear": 1105,
    "bybit-inverse": 30,
    "okx": 150,
    "dydx": 100,
    "kraken": 150,
    "htx-futures": 10,
}


def _row_for(feed_name: str, instrument: Instrument) -> tuple[str, dict[str, Any]]:
    """The venue's REST row that describes `instrument` (and the listing it goes into)."""
    symbol = instrument.symbol
    if feed_name.startswith("bybit"):
        category = feed_name.removeprefix("bybit-")
        quote = "USD" if instrument.contract_type == "inverse" else instrument.quote
        base = symbol[: -len(quote)] if symbol.endswith(quote) else instrument.coin
        return category, bybit_row(symbol, base, quote, category)
    if feed_name == "okx":
        inst_type = "SWAP" if symbol.endswith("-SWAP") else "FUTURES"
        ct_val = f"{instrument.contract_size:g}"
        return inst_type, okx_row(symbol, inst_type, ct_val, instrument.contract_type)
    if feed_name == "kraken":
        return "", kraken_row(symbol, instrument.contract_size)
    if feed_name == "htx-futures":
        coin = delivery_coin(symbol)
        return "", htx_futures_row(coin, "quarter", symbol[len(coin) :], instrument.contract_size)
    return "", {"ticker": symbol}  # dydx


def _synthetic(feed_name: str) -> list[tuple[str, dict[str, Any]]]:
    count = SYNTHETIC_COUNTS[feed_name]
    if feed_name.startswith("bybit"):
        category = feed_name.removeprefix("bybit-")
        return [(category, row) for row in bybit_rows(count, category)]
    if feed_name == "okx":
        return [
            ("SWAP", okx_row(f"{base}-USDT-SWAP", "SWAP", "1", "linear"))
            for base in synthetic_bases(count)
        ]
    if feed_name == "kraken":
        return [("", row) for row in kraken_rows(count)]
    if feed_name == "htx-futures":
        return [("", row) for row in htx_futures_rows(count)]
    return [("", {"ticker": f"{base}-USD"}) for base in synthetic_bases(count)]


def serve_listings(rest: FakeRest, feed_names: Iterable[str]) -> list[str]:
    """List each feed's bundled instruments (rows that give back exactly their contract rules)
    and synthetic ones on `rest`; returns the feeds it serves (see `FakeRest.url`)."""
    served = []
    for name in feed_names:
        if name not in SYNTHETIC_COUNTS:
            continue
        served.append(name)
        bundled = [_row_for(name, i) for i in bundled_snapshot(name).values()]
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for part, row in _synthetic(name) + bundled:  # bundled rows win
            key = str(row.get("symbol") or row.get("instId") or row.get("ticker") or "")
            key = str(row.get("contract_code", key))
            rows[(part, key)] = row
        for (part, _), row in sorted(rows.items()):
            if name.startswith("bybit"):
                rest.bybit[part].append(row)
            elif name == "okx":
                rest.okx[part].append(row)
            elif name == "kraken":
                rest.kraken.append(row)
            elif name == "htx-futures":
                rest.htx_futures.append(row)
            else:
                rest.dydx_markets.append(row["ticker"])
    return served


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeRest(port=args.port)
    fake.bybit["linear"] = bybit_rows(args.bybit_linear, "linear")
    fake.bybit["inverse"] = bybit_rows(args.bybit_inverse, "inverse")
    fake.dydx_markets = [f"{b}-USD" for b in synthetic_bases(args.dydx)]
    await fake.start()
    for name in ("bybit-linear", "bybit-inverse", "okx", "dydx", "kraken"):
        print(f"fake REST {name} on {fake.url(name)}", flush=True)
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bybit-linear", type=int, default=1105)
    parser.add_argument("--bybit-inverse", type=int, default=30)
    parser.add_argument("--dydx", type=int, default=100)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
