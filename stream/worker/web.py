"""HTTP endpoints of the worker (Faust's web server, aiohttp underneath).

Every answer about liquidations comes from the global view (stream.view), which each worker
reads from the output topics: with several workers, any of them answers any query the same.
The API's handlers are stream.view.routes, served here unless LIQSTREAM_WORKER_API=false
(then `liqstream api` serves them in a process of its own).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from stream.view.consumer import ViewFeeder
from stream.view.routes import OPENAPI, ApiRoutes, Handler
from stream.view.server import register_stream_metrics
from stream.worker.agents import WorkerAgents

__all__ = ["OPENAPI", "register_web"]


def register_web(app: faust.App, agents: WorkerAgents, feeder: ViewFeeder) -> CollectorRegistry:
    registry = agents.registry
    buckets = Gauge(
        "liqstream_worker_buckets", "Time buckets held by the aggregation", registry=registry
    )
    active = Gauge(
        "liqstream_worker_active", "1 on the worker that owns the aggregation", registry=registry
    )
    buckets.set_function(lambda: len(agents.aggregation.buckets))
    active.set_function(lambda: 1 if agents.active else 0)

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        """Liveness: the process serves requests and none of its parts has died (a crashed
        aggregation agent Faust has not started again computes nothing: restart the worker)."""
        if not agents.health.ok:
            return web.json({"status": "unhealthy", "down": agents.health.down}, status=503)
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        """Ready once the worker recovered its tables and read the totals, breaches and
        status topics to the end, and while none of its parts is down. The history topic is
        read after (`history_caught_up`; /api/history answers 503 until then)."""
        ready = agents.recovered and feeder.caught_up and agents.health.ok
        body: dict[str, Any] = {
            "ready": ready,
            "active": agents.active,
            "tables_recovered": agents.recovered,
            "view_caught_up": feeder.caught_up,
            "history_caught_up": feeder.history_caught_up if feeder.keeps_history else None,
            "down": agents.health.down,
        }
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        # aiohttp takes the charset separately, so not CONTENT_TYPE_LATEST verbatim
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    if feeder.settings.worker_api:  # else only `liqstream api` serves them
        for path, handler in ApiRoutes(feeder).routes():
            app.page(path, name=path)(_page(handler))
        register_stream_metrics(registry, feeder, unreadable=False)  # the worker counts that

    return registry


def _page(handler: Handler) -> Any:
    """A Faust page that hands the request (aiohttp's, underneath) to an API handler."""

    async def page(web: View, request: Request) -> Any:
        return await handler(request)  # type: ignore[arg-type]  # aiohttp underneath

    return page
