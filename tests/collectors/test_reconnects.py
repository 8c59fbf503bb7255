"""The shells' reconnect, resubscribe and listing paths, against the fakes.

- An instrument answer that is JSON but not the venue's shape (rows that are not objects) is a
  failed refresh: the listing is kept and the feed subscribes what it has, instead of its first
  subscribe (which waits for that answer) crashing the feed over and over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from stream.collectors import lighter
from stream.collectors.connection import FeedConnection
from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.fake_exchange import FakeExchange
from tests.collectors.test_shells import TOPICS, RecordingPublisher

(LIGHTER,) = lighter.FEEDS


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 30.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


async def answering(body: object) -> tuple[web.AppRunner, str]:
    """A local instruments endpoint that always answers `body` (200, JSON)."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/api/v1/orderBookDetails", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/api/v1/orderBookDetails"


async def test_a_malformed_listing_is_a_failed_refresh_and_the_feed_subscribes_what_it_has(
    tmp_path: Path,
) -> None:
    # Lighter's shape, but its rows are numbers, not market objects
    runner, url = await answering({"code": 200, "order_book_details": [1, 2]})
    book = InstrumentBook(LIGHTER, tmp_path, url=url)
    bundled = set(bundled_snapshot("lighter"))
    assert await book.refresh(force=True) is False
    assert set(book.symbols()) == bundled
    fake = FakeExchange(LIGHTER, [])
    metrics = CollectorMetrics()
    pipeline = FeedPipeline(LIGHTER, book, RecordingPublisher(), TOPICS, metrics)  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, await fake.start(), max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())
    try:
        wanted = {lighter.topic(symbol) for symbol in bundled}
        await until(lambda: fake.subscribed_topics() == wanted, "the bundled markets subscribed")
        assert not task.done()  # the feed runs: the malformed answer did not end it
        assert metrics.internal_errors.labels(LIGHTER.name)._value.get() == 0
    finally:
        connection.stop.set()
        await task
        await fake.stop()
        await runner.cleanup()
