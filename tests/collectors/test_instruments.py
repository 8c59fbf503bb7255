"""Instrument listings: every page fetched, a failed page changes nothing, delisted symbols
leave the listing but stay readable, concurrent refreshes share one fetch."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web

from stream.collectors.bybit import FEEDS as BYBIT
from stream.collectors.instruments import InstrumentBook
from stream.fake_rest import FakeRest, bybit_rows

LINEAR = BYBIT[0]


async def test_every_page_is_fetched_and_cached(tmp_path: Path) -> None:
    rest = FakeRest()
    rest.bybit["linear"] = bybit_rows(2_345, "linear")
    await rest.start()
    try:
        book = InstrumentBook(LINEAR, tmp_path, url=rest.url("bybit-linear"))
        assert await book.refresh(force=True)
        assert len(book.symbols()) == 2_345
        assert len(rest.requests) == 3  # 1,000 + 1,000 + 345
        assert all("limit=1000" in r for r in rest.requests)
        cached = InstrumentBook(LINEAR, tmp_path, url="")
        assert cached.symbols() == book.symbols()  # the next start begins with them
    finally:
        await rest.stop()


async def test_a_failed_page_keeps_the_current_listing(tmp_path: Path) -> None:
    pages = []

    async def instruments(request: web.Request) -> web.Response:
        pages.append(request.query.get("cursor"))
        if request.query.get("cursor"):
            return web.Response(status=502)
        rows = bybit_rows(3, "linear")
        return web.json_response({"retCode": 0, "result": {"list": rows, "nextPageCursor": "next"}})

    app = web.Application()
    app.router.add_get("/v5/market/instruments-info", instruments)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}/v5/market/instruments-info?category=linear&limit=1000"
        book = InstrumentBook(LINEAR, tmp_path, url=url)
        bundled = book.symbols()
        assert not await book.refresh(force=True)
        assert pages == [None, "next"]
        assert book.symbols() == bundled  # half a listing would unsubscribe the rest
        assert not book.refreshed.is_set()
    finally:
        await runner.cleanup()


async def test_delisted_symbols_leave_the_listing_but_stay_readable(tmp_path: Path) -> None:
    rest = FakeRest()
    rest.bybit["linear"] = bybit_rows(20, "linear")
    await rest.start()
    try:
        book = InstrumentBook(LINEAR, tmp_path, url=rest.url("bybit-linear"))
        changes = []
        book.on_change.append(lambda: changes.append(book.symbols()))
        await book.refresh(force=True)
        gone = rest.bybit["linear"].pop(0)["symbol"]
        assert await book.refresh(force=True)
        assert gone not in book.symbols() and book[gone].symbol == gone
        assert len(changes) == 2 and gone not in changes[-1]
        assert not await book.refresh(force=True)  # nothing changed: no listener call
        assert len(changes) == 2
    finally:
        await rest.stop()


async def test_concurrent_refreshes_share_one_fetch(tmp_path: Path) -> None:
    rest = FakeRest()
    rest.bybit["linear"] = bybit_rows(10, "linear")
    await rest.start()
    try:
        book = InstrumentBook(LINEAR, tmp_path, url=rest.url("bybit-linear"))
        results = await asyncio.gather(
            book.refresh(force=True), book.wait_first_listing(5.0), book.refresh(force=True)
        )
        assert results[0] is True and results[2] is True
        assert len(rest.requests) == 1
    finally:
        await rest.stop()
