"""Zoomex's instrument lifecycle, as for Bybit in test_lifecycle: a listing fetched page by page
from a fake instruments-info endpoint, every listed symbol subscribed (over as many connections
as Zoomex's 21,000 characters of topics per connection require) and live, then a symbol listed
later subscribed and a delisted one unsubscribed on the live connections, with the coverage
record following. No Kafka: the publisher only records.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

import orjson
import pytest
from aiohttp import web

from stream.collectors import zoomex
from stream.collectors.instruments import InstrumentBook
from stream.collectors.venue import Feed
from stream.fake_exchange import FakeExchange
from stream.fake_rest import bybit_row, synthetic_bases
from tests.collectors.test_shells import TOPICS, assert_follows_listing_change, run_collector
from tests.collectors.test_shells import until as wait_until

LINEAR, INVERSE = zoomex.FEEDS
REST_PATH = "/cloud/trade/v3/market/instruments-info"
TS_MS = 1_762_290_000_000
GUARD_S = 60.0  # a lifecycle not done by then is stuck, not slow


class FakeZoomexRest:
    """Zoomex v3 docs, "Market > Get Instruments Info" (Bybit v5's endpoint under Zoomex's
    host): `category` linear or inverse, `limit` 1 to 1,000 (else retCode 10001 "params
    error"), rows sorted by symbol, and a `nextPageCursor` to pass back as `cursor` while
    rows remain (empty on the last page). The cursor is opaque to clients."""

    MAX_LIMIT = 1000
    DEFAULT_LIMIT = 500

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {"linear": [], "inverse": []}
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(REST_PATH, self._instruments)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, feed: Feed) -> str:
        """The feed's own instruments URL (path and query) on this server."""
        assert feed.instruments_url is not None
        return self.base + feed.instruments_url.split("openapi.zoomex.com", 1)[1]

    async def _instruments(self, request: web.Request) -> web.Response:
        self.requests.append(request.path_qs)
        category = request.query.get("category", "")
        try:
            limit = int(request.query.get("limit", self.DEFAULT_LIMIT))
        except ValueError:
            limit = 0
        if category not in self.rows or not 1 <= limit <= self.MAX_LIMIT:
            return web.json_response({"retCode": 10001, "retMsg": "params error", "result": {}})
        rows = sorted(self.rows[category], key=lambda row: row["symbol"])
        start = 0
        if cursor := request.query.get("cursor", ""):
            last = unquote(cursor).removeprefix("after=")
            start = next((i + 1 for i, r in enumerate(rows) if r["symbol"] == last), len(rows))
        page = rows[start : start + limit]
        more = start + limit < len(rows)
        result = {
            "category": category,
            "list": page,
            "nextPageCursor": quote(f"after={page[-1]['symbol']}") if more and page else "",
        }
        return web.json_response({"retCode": 0, "retMsg": "OK", "result": result})


def listing(category: str, count: int) -> list[dict[str, Any]]:
    quote_coin = "USD" if category == "inverse" else "USDT"
    return [
        bybit_row(f"{base}{quote_coin}", base, quote_coin, category)
        for base in synthetic_bases(count)
    ]


def documented_frame(topic: str, symbol: str, seq: int) -> str:
    """ "All Liquidation" push in the documented shape: a long of 0.5 (coins on linear, USD
    contracts on inverse) at 2.0."""
    item = {"T": TS_MS + seq, "s": symbol, "S": "Buy", "v": "0.5", "p": "2.0"}
    return orjson.dumps(
        {"topic": topic, "type": "snapshot", "ts": TS_MS + seq, "data": [item]}
    ).decode()


async def until(condition: Callable[[], bool], what: str) -> None:
    await wait_until(condition, what, GUARD_S)


@pytest.mark.parametrize(
    ("feed", "count"), [(LINEAR, 1_100), (INVERSE, 25)], ids=["linear", "inverse"]
)
async def test_every_listed_symbol_live_then_listing_changes(
    feed: Feed, count: int, tmp_path: Any
) -> None:
    assert feed.per_symbol is not None
    category = feed.name.removeprefix("zoomex-")
    rest = FakeZoomexRest()
    rest.rows[category] = listing(category, count)
    await rest.start()
    book = InstrumentBook(feed, tmp_path, url=rest.url(feed))
    seq = itertools.count(1)

    def one_liquidation(topic: str) -> str | None:
        symbol = topic.removeprefix("allLiquidation.")
        return documented_frame(topic, symbol, next(seq)) if symbol in book else None

    fake = FakeExchange(feed, [], frame_on_subscribe=one_liquidation)
    collector = await run_collector(feed, book, fake)
    live, coverage = collector.live, collector.coverage

    listed = {row["symbol"] for row in rest.rows[category]}
    try:
        await until(lambda: listed <= live(), "every listed symbol live")
        assert book.refreshed.is_set()  # the first subscribe waited for the REST listing
        if count > 1000:  # more than a page: the cursor was followed
            assert any("cursor=" in path for path in rest.requests)
            chars = [sum(len(t) for t in s.topics) for s in fake.sessions.values()]
            assert len(chars) >= 2 and max(chars) <= 21_000, chars
        await until(
            lambda: coverage().get("instruments_subscribed") == count, "coverage: all subscribed"
        )
        assert coverage()["instruments_listed"] == count and coverage()["rejected"] == []
        published = collector.publisher.values(TOPICS.liquidations)
        events = [e for e in published if e["symbol"] in listed]
        for event in events:  # Buy = a long died; linear 0.5 coins, inverse 0.5 USD
            assert (event["exchange"], event["side"]) == ("zoomex", "long")
            assert event["notional_usd"] == pytest.approx(1.0 if category == "linear" else 0.5)

        late_base = "LATE"
        late = f"{late_base}{'USD' if category == 'inverse' else 'USDT'}"
        rest.rows[category].append(bybit_row(late, late_base, late[4:], category))
        gone = str(rest.rows[category].pop(1)["symbol"])
        await assert_follows_listing_change(collector, book, fake, late, gone, count, GUARD_S)
        assert gone not in book.symbols() and gone in book  # rules kept for late frames
    finally:
        await collector.stop()
        await fake.stop()
        await rest.stop()
