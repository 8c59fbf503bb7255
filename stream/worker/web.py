"""HTTP endpoints of the worker (Faust's web server): health, readiness, metrics, totals."""

from __future__ import annotations

import time
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from stream.worker.agents import WorkerAgents


def register_web(app: faust.App, agents: WorkerAgents) -> CollectorRegistry:
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
        """Liveness: the process serves requests."""
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: View, request: Request) -> Response:
        """Ready once the worker has joined the group and recovered its table."""
        ready = agents.recovered
        body: dict[str, Any] = {"ready": ready, "active": agents.active}
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(web: View, request: Request) -> Response:
        # aiohttp takes the charset separately, so not CONTENT_TYPE_LATEST verbatim
        return web.bytes(generate_latest(registry), content_type="text/plain; version=0.0.4")

    @app.page("/api/totals")
    async def totals(web: View, request: Request) -> Response:
        """Current totals of this worker's aggregation (the active worker holds them all)."""
        now_ms = time.time_ns() // 1_000_000
        window = request.query.get("window")
        if window is not None and window not in agents.aggregation.windows:
            known = ", ".join(agents.aggregation.windows)
            return web.json({"error": f"unknown window {window!r}; known: {known}"}, status=400)
        exchange = request.query.get("exchange")
        coin = request.query.get("coin")
        records = [
            record
            for record in agents.aggregation.snapshot(now_ms)
            if (window is None or record["window"] == window)
            and (exchange is None or record["exchange"] == (None if exchange == "*" else exchange))
            and (coin is None or record["coin"] == (None if coin == "*" else coin.upper()))
        ]
        return web.json({"as_of": now_ms, "active": agents.active, "totals": records})

    return registry
