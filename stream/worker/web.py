"""HTTP endpoints of the worker (Faust's web server, aiohttp underneath).

Every answer about liquidations comes from the global view (stream.view), which each worker
reads from the output topics: with several workers, any of them answers any query the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import faust
import orjson
from aiohttp import web as aioweb
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from stream.view.consumer import CLOSED, ViewFeeder
from stream.view.state import BadRequest
from stream.worker.agents import WorkerAgents

OPENAPI = Path(__file__).with_name("openapi.json")
DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
PING_S = 15.0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def register_web(app: faust.App, agents: WorkerAgents, feeder: ViewFeeder) -> CollectorRegistry:
    registry = agents.registry
    view = feeder.view
    buckets = Gauge(
        "liqstream_worker_buckets", "Time buckets held by the aggregation", registry=registry
    )
    active = Gauge(
        "liqstream_worker_active", "1 on the worker that owns the aggregation", registry=registry
    )
    buckets.set_function(lambda: len(agents.aggregation.buckets))
    active.set_function(lambda: 1 if agents.active else 0)

    def answer(web: View, query: Any) -> Response:
        try:
            return web.json(query())
        except BadRequest as exc:
            return web.json({"error": str(exc)}, status=400)

    @app.page("/healthz")
    async def healthz(web: View, request: Request) -> Response:
        """Liveness: the process serves requests and none of its parts has died (a crashed
        aggregation agent Faust has not started again computes nothing: restart the worker)."""
        if not agents.health.ok:
            return web.json({"status": "unhealthy", "down": agents.health.down}, status=503)
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        """Ready once the worker recovered its tables and read the output topics to the end,
        and while none of its parts is down."""
        ready = agents.recovered and feeder.caught_up and agents.health.ok
        body: dict[str, Any] = {
            "ready": ready,
            "active": agents.active,
            "tables_recovered": agents.recovered,
            "view_caught_up": feeder.caught_up,
            "down": agents.health.down,
        }
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        # aiohttp takes the charset separately, so not CONTENT_TYPE_LATEST verbatim
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    @app.page("/api/totals")
    async def totals(web: View, request: Request) -> Response:
        """Current totals, filtered by window, exchange and coin (`all` = the null scope)."""
        return answer(web, lambda: view.query_totals(request.query, now_ms()))

    @app.page("/api/breaches")
    async def breaches(web: View, request: Request) -> Response:
        """Breach and recovery records of the last 24 hours, newest first."""
        return answer(web, lambda: view.query_breaches(request.query, now_ms()))

    @app.page("/api/largest")
    async def largest(web: View, request: Request) -> Response:
        """The largest single liquidations of a window, biggest first."""
        return answer(web, lambda: view.query_largest(request.query))

    @app.page("/api/coverage")
    async def coverage(web: View, request: Request) -> Response:
        """Per feed: connected or not, gaps in the last 24 hours, sampled (lower bound),
        instruments listed and subscribed, and the topics the venue refused."""
        return answer(web, lambda: view.query_coverage(request.query, now_ms()))

    @app.page("/openapi.json")
    async def openapi(web: View, request: Request) -> Response:
        return web.bytes(OPENAPI.read_bytes(), content_type="application/json")

    @app.page("/api/stream")
    async def stream(web: View, request: Request) -> Any:
        """Server-Sent Events: `totals`, `breach` and `status` records as they arrive."""
        response = aioweb.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        queue = feeder.subscribe()  # before the headers: what follows them is not missed
        try:
            await response.prepare(request)  # type: ignore[arg-type]  # aiohttp underneath
            await response.write(b": connected\n\n")
            while True:
                try:
                    kind, record = await asyncio.wait_for(queue.get(), PING_S)
                except TimeoutError:
                    await response.write(b": ping\n\n")
                    continue
                if (kind, record) == CLOSED:  # fell behind: end it, the browser reconnects
                    break
                await response.write(
                    b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps(record))
                )
        except ConnectionResetError:  # the client went away
            pass
        finally:
            feeder.unsubscribe(queue)
            with contextlib.suppress(Exception):
                await response.write_eof()
        return response

    @app.page("/")
    async def dashboard(web: View, request: Request) -> Response:
        """The live dashboard (static HTML and JS, no build step, nothing from a CDN)."""
        return web.html((DASHBOARD / "index.html").read_text())

    @app.page("/dashboard.js")
    async def dashboard_js(web: View, request: Request) -> Response:
        return web.bytes(
            (DASHBOARD / "dashboard.js").read_bytes(), content_type="application/javascript"
        )

    return registry
