"""`liqstream api`: the HTTP API and dashboard in a process of their own.

The view reads only the output topics (totals, breaches, collector status), so serving needs
no worker state: any number of these processes (`docker compose up --scale api=N` behind a
load balancer) answer alike, and however many dashboards they serve, the worker's event loop
never writes a byte to a client.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stream.collectors.registry import FEEDS
from stream.config import Settings
from stream.view.consumer import ViewFeeder
from stream.view.routes import ApiRoutes, json_response
from stream.view.state import GlobalView

log = logging.getLogger(__name__)


def build_feeder(settings: Settings, *, history: bool = True) -> ViewFeeder:
    """The view of the configured windows and known feeds, and its feeder (not started).

    The one place the serving side reads the venue registry: what each feed's coverage can
    promise (`lower_bound`, notes) is a fact of its venue module."""
    windows = tuple(sorted(settings.windows_ms, key=settings.windows_ms.__getitem__))
    feeds = {name: (feed.exchange, feed.lower_bound, feed.notes) for name, feed in FEEDS.items()}
    return ViewFeeder(settings, GlobalView(windows, feeds), history=history)


class FeederCounters(Collector):
    """The feeder's plain counts, exported at scrape time (nothing counted per record): those
    of the streams, and with `unreadable` the records the view skipped (the worker exports
    that one itself)."""

    def __init__(self, feeder: ViewFeeder, *, unreadable: bool = True) -> None:
        self.feeder = feeder
        self.unreadable = unreadable

    def collect(self) -> Iterator[CounterMetricFamily]:
        feeder = self.feeder
        counts = [
            ("liqstream_stream_dropped", feeder.dropped, "Stream clients ended, behind"),
            ("liqstream_stream_ticks", feeder.fanout.seq, "Ticks that sent changes"),
            ("liqstream_stream_coalesced", feeder.fanout.coalesced, "Changes superseded"),
        ]
        if self.unreadable:
            counts.append(("liqstream_view_unreadable", feeder.unreadable, "Records skipped"))
        for name, value, meaning in counts:
            yield CounterMetricFamily(name, meaning, value=value)


def register_stream_metrics(
    registry: CollectorRegistry, feeder: ViewFeeder, *, unreadable: bool = True
) -> None:
    registry.register(FeederCounters(feeder, unreadable=unreadable))
    clients = Gauge("liqstream_stream_clients", "Open /api/stream clients", registry=registry)
    clients.set_function(lambda: len(feeder.subscribers))


def api_registry(feeder: ViewFeeder) -> CollectorRegistry:
    registry = CollectorRegistry()
    register_stream_metrics(registry, feeder)
    return registry


def build_app(feeder: ViewFeeder, feeding: asyncio.Task[None]) -> web.Application:
    """The API's routes plus health, readiness and metrics of this process."""
    registry = api_registry(feeder)
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        """Liveness: serving, and the feeder still runs (it retries Kafka errors forever; if
        it ended, nothing new would ever be served: restart the process)."""
        if feeding.done():
            return json_response({"status": "unhealthy", "down": ["view"]}, status=503)
        return json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        """Ready once the totals, breaches and status topics were read to the ends seen at
        start; the history topic is read after (/api/history answers 503 until then)."""
        ready = feeder.caught_up and not feeding.done()
        body = {
            "ready": ready,
            "view_caught_up": feeder.caught_up,
            "history_caught_up": feeder.history_caught_up,
        }
        return json_response(body, status=200 if ready else 503)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), content_type="text/plain", charset="utf-8"
        )

    for path, handler in (("/healthz", healthz), ("/readyz", readyz), ("/metrics", metrics)):
        app.router.add_get(path, handler)
    for path, api_handler in ApiRoutes(feeder).routes():
        app.router.add_get(path, api_handler)
    return app


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Serves on LIQSTREAM_API_HOST:LIQSTREAM_API_PORT until `stop`."""
    feeder = build_feeder(settings)
    feeding = asyncio.create_task(feeder.run(stop), name="view")
    runner = web.AppRunner(build_app(feeder, feeding), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, settings.api_host, settings.api_port)
    await site.start()
    log.info("liqstream api on http://%s:%s/", settings.api_host, settings.api_port)
    try:
        await asyncio.wait(
            {feeding, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED
        )
        if feeding.done() and not stop.is_set():
            feeding.result()  # the feeder ended by itself: let its error end the process
    finally:
        feeding.cancel()
        await asyncio.gather(feeding, return_exceptions=True)  # it ends every stream
        await runner.cleanup()


def run_api(settings: Settings) -> None:
    """Blocks until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
