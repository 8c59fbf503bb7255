"""`liqstream collect`: run the feeds' connections, publish to Kafka, serve metrics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping, Sequence

from prometheus_client import start_http_server

from stream.collectors.connection import FeedConnection
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.publisher import Publisher
from stream.collectors.venue import Feed
from stream.config import Settings
from stream.kafka import Topics

log = logging.getLogger(__name__)

INSTRUMENT_REFRESH_S = 3_600.0


class CollectorService:
    """All connections of one collector process, sharing one publisher."""

    def __init__(
        self,
        settings: Settings,
        feeds: Sequence[Feed],
        *,
        urls: Mapping[str, str] | None = None,
        instrument_urls: Mapping[str, str] | None = None,
        metrics: CollectorMetrics | None = None,
        max_backoff_s: float = 30.0,
        refresh_instruments: bool = True,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or CollectorMetrics()
        self.publisher = Publisher(settings, self.metrics)
        topics = Topics.with_prefix(settings.topic_prefix)
        cache_dir = settings.data_dir / "instruments"
        urls = urls or {}
        instrument_urls = instrument_urls or {}
        self.connections = []
        for feed in feeds:
            url = instrument_urls.get(feed.name) if refresh_instruments else ""
            book = InstrumentBook(feed, cache_dir, url=url)
            pipeline = FeedPipeline(feed, book, self.publisher, topics, self.metrics)
            self.connections.append(
                FeedConnection(pipeline, urls.get(feed.name), max_backoff_s=max_backoff_s)
            )
        self.stop = asyncio.Event()

    async def _refresh_instruments(self) -> None:
        while True:
            for connection in self.connections:
                await connection.pipeline.book.refresh(force=True)
            await asyncio.sleep(INSTRUMENT_REFRESH_S)

    async def run(self) -> None:
        """Run until `stop` is set; then stop reading, flush what is buffered, close."""
        self.publisher.start()
        refresher = asyncio.create_task(self._refresh_instruments())
        runs = [asyncio.create_task(c.run(), name=c.feed.name) for c in self.connections]
        try:
            await self.stop.wait()
        finally:
            for connection in self.connections:
                connection.stop.set()
            await asyncio.gather(*runs, return_exceptions=True)
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            await self.publisher.close()
            log.info("collectors stopped; %d records delivered", self.publisher.delivered)


async def run_collect(
    settings: Settings,
    feeds: Sequence[Feed],
    urls: Mapping[str, str],
    instrument_urls: Mapping[str, str],
    *,
    refresh_instruments: bool = True,
) -> None:
    """The command's body: signals stop the service cleanly."""
    service = CollectorService(
        settings,
        feeds,
        urls=urls,
        instrument_urls=instrument_urls,
        refresh_instruments=refresh_instruments,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, service.stop.set)
    if settings.metrics_port:
        start_http_server(
            settings.metrics_port, settings.metrics_host, registry=service.metrics.registry
        )
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    await service.run()
