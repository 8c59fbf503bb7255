"""The HTTP API and dashboard as plain aiohttp handlers over the global view: served by
`liqstream api` (stream.view.server) and, when asked, by the worker's own web server."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from stream.view.consumer import ViewFeeder
from stream.view.state import BadRequest

PACKAGE = Path(__file__).resolve().parent.parent
OPENAPI = PACKAGE / "worker" / "openapi.json"
DASHBOARD = PACKAGE / "dashboard"
TOTALS_CACHE_MAX = 256  # distinct /api/totals filters kept encoded per version of the view
HISTORY_RETRY_AFTER_S = 5  # /api/history while the history topic is still being read

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


class ApiRoutes:
    """The handlers of every /api path, /openapi.json and the dashboard, over one feeder."""

    def __init__(self, feeder: ViewFeeder) -> None:
        self.feeder = feeder
        self.view = feeder.view
        self._windows = orjson.dumps(list(self.view.windows))
        self._totals_version = -1
        self._totals_cache: dict[tuple[tuple[str, str], ...], bytes] = {}

    def routes(self) -> list[tuple[str, Handler]]:
        return [
            ("/api/totals", self.totals),
            ("/api/breaches", self.breaches),
            ("/api/largest", self.largest),
            ("/api/coverage", self.coverage),
            ("/api/history", self.history),
            ("/api/stream", self.stream),
            ("/openapi.json", self.openapi),
            ("/", self.dashboard),
            ("/dashboard.js", self.dashboard_js),
        ]

    @staticmethod
    def answer(query: Callable[[], dict[str, Any]]) -> web.Response:
        try:
            return json_response(query())
        except BadRequest as exc:
            return json_response({"error": str(exc)}, status=400)

    async def totals(self, request: web.Request) -> web.Response:
        """Current totals, filtered by window, exchange and coin (`all` = the null scope).

        The worker publishes its totals in bursts (one per publish interval), so between two
        bursts every request for the same filters gets the same records: they are encoded
        once per change of the view (`totals_version`), and only `as_of` is new each time."""
        params = tuple(sorted(request.query.items()))
        version = self.view.totals_version
        if version != self._totals_version:
            self._totals_cache.clear()
            self._totals_version = version
        encoded = self._totals_cache.get(params)
        if encoded is None:
            try:
                answer = self.view.query_totals(request.query, now_ms())
            except BadRequest as exc:
                return json_response({"error": str(exc)}, status=400)
            encoded = orjson.dumps(answer["totals"])
            if len(self._totals_cache) < TOTALS_CACHE_MAX:
                self._totals_cache[params] = encoded
        body = b'{"as_of":%d,"windows":%s,"totals":%s}' % (now_ms(), self._windows, encoded)
        return web.Response(body=body, content_type="application/json")

    async def breaches(self, request: web.Request) -> web.Response:
        """Breach and recovery records of the last 24 hours, newest first."""
        return self.answer(lambda: self.view.query_breaches(request.query, now_ms()))

    async def largest(self, request: web.Request) -> web.Response:
        """The largest single liquidations of a window, biggest first."""
        return self.answer(lambda: self.view.query_largest(request.query))

    async def coverage(self, request: web.Request) -> web.Response:
        """Per feed: connected or not, gaps in the last 24 hours, sampled (lower bound),
        instruments listed and subscribed, and the topics the venue refused."""
        return self.answer(lambda: self.view.query_coverage(request.query, now_ms()))

    async def history(self, request: web.Request) -> web.Response:
        """Long and short USD, counts and the largest order per interval of one scope; 503
        with Retry-After while the history topic is still being read (after a start), as
        an answer from part of it would show intervals short."""
        if not self.feeder.history_caught_up:
            loading = {
                "error": "history is still loading (the view reads liquidations.history "
                "after a start); ask again shortly",
                "loading": True,
            }
            response = json_response(loading, status=503)
            response.headers["Retry-After"] = str(HISTORY_RETRY_AFTER_S)
            return response
        return self.answer(lambda: self.feeder.history.query(request.query, now_ms()))

    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")

    async def dashboard(self, request: web.Request) -> web.Response:
        """The live dashboard (static HTML and JS, no build step, nothing from a CDN)."""
        return web.Response(text=(DASHBOARD / "index.html").read_text(), content_type="text/html")

    async def dashboard_js(self, request: web.Request) -> web.Response:
        return web.Response(
            body=(DASHBOARD / "dashboard.js").read_bytes(), content_type="application/javascript"
        )

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: `totals`, `breach` and `status` records as they change, at most
        one write per tick (LIQSTREAM_STREAM_INTERVAL), a key's latest totals record only,
        filtered by `window`, `exchange` and `coin` as /api/totals is. A client that falls
        LIQSTREAM_STREAM_MAX_LAG behind (or whose write stalls that long) has its stream
        ended: it reconnects and reloads, while the others are not held up."""
        try:
            wanted = self.view.stream_filter(request.query)
        except BadRequest as exc:
            return json_response({"error": str(exc)}, status=400)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        feeder, fanout = self.feeder, self.feeder.fanout
        subscriber = feeder.subscribe(wanted)  # before the headers: what follows is not missed
        if request.transport is not None:
            subscriber.abort = request.transport.abort
        try:
            await response.prepare(request)
            await response.write(b": connected\n\n")
            while True:
                await subscriber.wake.wait()  # the feeder's tick wakes it, pings and cuts off
                subscriber.wake.clear()
                if feeder.closing:
                    break
                payload = fanout.since(subscriber.cursor, wanted)
                if payload is None:  # fell behind: end it, the browser reconnects
                    feeder.dropped += 1
                    break
                subscriber.cursor = fanout.seq
                if not payload and subscriber.ping:
                    payload = b": ping\n\n"
                subscriber.ping = False
                if payload:
                    subscriber.writing_since = time.monotonic()
                    await response.write(payload)
                    subscriber.writing_since = None
        except ConnectionResetError:  # the client went away, or was cut off for stalling
            pass
        finally:
            feeder.unsubscribe(subscriber)
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                if request.transport is not None and not request.transport.is_closing():
                    await response.write_eof()
        return response
