"""`liqstream collect`: run the feeds' connections, publish to Kafka, serve metrics.

The service supervises every task it starts: a feed whose connections fail unexpectedly is
logged, counted (`liqstream_collector_internal_errors_total`), dead-lettered as
`internal_error` and restarted with capped, jittered backoff; the instrument refresher and the
id memory writer are restarted the same way. Nothing it runs can end unnoticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence

from prometheus_client import start_http_server

from stream.collectors.connection import FeedConnection
from stream.collectors.dedup import RecentIds
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.publisher import Publisher, backoff_s
from stream.collectors.venue import Feed
from stream.config import Settings
from stream.kafka import Topics

log = logging.getLogger(__name__)

SAVE_IDS_S = 5.0  # how often remembered ids of replaying feeds reach the disk
MAX_RESTART_BACKOFF_S = 30.0


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
        instruments_refresh_s: float | None = None,  # default: the setting
    ) -> None:
        self.settings = settings
        self.metrics = metrics or CollectorMetrics()
        self.publisher = Publisher(settings, self.metrics)
        self.instruments_refresh_s = instruments_refresh_s or settings.instruments_refresh_s
        self.max_backoff_s = max_backoff_s
        topics = Topics.with_prefix(settings.topic_prefix)
        cache_dir = settings.data_dir / "instruments"
        urls = urls or {}
        instrument_urls = instrument_urls or {}
        self.connections = []
        self.recent_ids: list[RecentIds] = []
        for feed in feeds:
            url = instrument_urls.get(feed.name) if refresh_instruments else ""
            book = InstrumentBook(feed, cache_dir, url=url)
            recent = RecentIds(
                path=settings.data_dir / "recent_ids" / f"{feed.name}.json"
                if feed.replays_on_subscribe
                else None
            )
            self.recent_ids.append(recent)
            pipeline = FeedPipeline(
                feed, book, self.publisher, topics, self.metrics, recent_ids=recent
            )
            self.connections.append(
                FeedConnection(
                    pipeline,
                    urls.get(feed.name),
                    max_backoff_s=max_backoff_s,
                    status_interval_s=settings.status_interval_s,
                )
            )
        self.stop = asyncio.Event()

    async def _refresh_instruments(self) -> None:
        while True:
            for connection in self.connections:
                await connection.pipeline.book.refresh(force=True)
            await asyncio.sleep(self.instruments_refresh_s)

    def _save_ids(self) -> None:
        for recent in self.recent_ids:
            try:
                recent.save()
            except OSError as exc:
                log.error("cannot write the id memory %s: %s", recent.path, exc)

    async def _save_ids_periodically(self) -> None:
        while True:
            await asyncio.sleep(SAVE_IDS_S)
            self._save_ids()

    def _flush(self, pipeline: FeedPipeline) -> None:
        """Held rows of a stateful parser become events before the publisher closes."""
        try:
            settled = pipeline.flush()
        except Exception as exc:  # supervision boundary: logged, counted, dead-lettered
            pipeline.internal_error(exc, None)
            return
        if settled:
            log.info("%s: %d held events settled at stop", pipeline.feed.name, len(settled))

    async def _supervise(
        self, name: str, body: Callable[[], Awaitable[None]], connection: FeedConnection | None
    ) -> None:
        """Run `body` until stop; an exception or an early end restarts it with backoff."""
        attempt = 0
        while not self.stop.is_set():
            try:
                await body()
                if self.stop.is_set():
                    return
                error: BaseException = RuntimeError(f"{name} ended unexpectedly")
            except Exception as exc:  # supervision boundary: logged, counted, dead-lettered
                error = exc
            if connection is not None:  # logged, counted and dead-lettered there
                connection.pipeline.internal_error(error, None)
                connection.stop = asyncio.Event()  # the crashed run set it while unwinding
            else:
                self.metrics.internal_errors.labels(name).inc()
                log.error("%s failed: %r", name, error, exc_info=error)
            delay_s = backoff_s(attempt, base_s=1.0, cap_s=MAX_RESTART_BACKOFF_S)
            attempt += 1
            log.warning("restarting %s in %.1fs", name, delay_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay_s)

    async def run(self) -> None:
        """Run until `stop` is set; then stop reading, settle what stateful parsers hold,
        flush what is buffered, close."""
        self.publisher.start()
        helpers = [
            asyncio.create_task(
                self._supervise("instrument-refresh", self._refresh_instruments, None)
            ),
            asyncio.create_task(self._supervise("id-memory", self._save_ids_periodically, None)),
        ]
        runs = [
            asyncio.create_task(self._supervise(c.feed.name, c.run, c), name=c.feed.name)
            for c in self.connections
        ]
        try:
            await self.stop.wait()
        finally:
            for connection in self.connections:
                connection.stop.set()
            await asyncio.gather(*runs, return_exceptions=True)
            for connection in self.connections:
                self._flush(connection.pipeline)
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            self._save_ids()
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
