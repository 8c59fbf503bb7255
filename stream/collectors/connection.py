"""The websocket loop of one feed: connect, subscribe, keep alive, read, reconnect.

Generic over venues: everything venue-specific (URL, subscribe messages, heartbeats,
compression, maximum connection age) comes from the `Feed`. Each connect, disconnect and gap
(from the moment a connection was lost until the next one is subscribed) goes to
`collectors.status` through the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from stream.collectors.pipeline import FeedPipeline, now_ms
from stream.collectors.publisher import backoff_s
from stream.errors import Rejected

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # oversized frames are dead-lettered by the parser
OPEN_TIMEOUT_S = 15.0


class IdleConnection(Exception):
    """No message within the feed's idle timeout."""


async def _pinger(ws: ClientConnection, text: str, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await ws.send(text)


class FeedConnection:
    """Runs until `stop` is set; reconnects with capped, jittered exponential backoff."""

    def __init__(
        self,
        pipeline: FeedPipeline,
        url: str | None = None,
        *,
        max_backoff_s: float = 30.0,
    ) -> None:
        self.pipeline = pipeline
        self.feed = pipeline.feed
        self.url = url or self.feed.url
        self.max_backoff_s = max_backoff_s
        self.stop = asyncio.Event()
        self.connections = 0

    async def run(self) -> None:
        feed = self.feed
        attempt = 0
        gap_start_ms: int | None = None
        metrics = self.pipeline.metrics
        while not self.stop.is_set():
            reason = "stopped"
            try:
                async with connect(
                    self.url,
                    max_size=MAX_MESSAGE_BYTES,
                    open_timeout=OPEN_TIMEOUT_S,
                    close_timeout=5,
                    additional_headers=feed.handshake_headers or None,
                ) as ws:
                    await self._subscribe(ws)
                    self.connections += 1
                    metrics.connected.labels(feed.name).set(1)
                    self.pipeline.status("connected", url=self.url)
                    if gap_start_ms is not None:
                        self.pipeline.status("gap", gap_start=gap_start_ms, gap_end=now_ms())
                        gap_start_ms = None
                    attempt = 0
                    log.info("connected", extra={"feed": feed.name, "url": self.url})
                    reason = await self._read(ws)
            except (OSError, TimeoutError, WebSocketException, IdleConnection) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, InvalidURI | InvalidHandshake):
                    log.error("cannot connect to %s: %s", self.url, exc)
            metrics.connected.labels(feed.name).set(0)
            if self.stop.is_set():
                self.pipeline.status("disconnected", reason="shutdown")
                return
            if gap_start_ms is None:
                gap_start_ms = now_ms()
            metrics.reconnects.labels(feed.name).inc()
            self.pipeline.status("disconnected", reason=reason)
            delay_s = 0.0 if reason == "max_age" else backoff_s(attempt, cap_s=self.max_backoff_s)
            attempt += 1
            log.warning(
                "disconnected (%s); reconnecting in %.1fs",
                reason,
                delay_s,
                extra={"feed": feed.name},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay_s)

    async def _subscribe(self, ws: ClientConnection) -> None:
        symbols = self.pipeline.book.symbols() if self.feed.needs_symbols else []
        for message in self.feed.subscribe(symbols):
            await ws.send(message)

    async def _read(self, ws: ClientConnection) -> str:
        """Read until the connection ends; return why it ended."""
        feed = self.feed
        opened = time.monotonic()
        pinger = (
            asyncio.create_task(_pinger(ws, feed.ping_text, feed.ping_interval_s))
            if feed.ping_text
            else None
        )
        stop_wait = asyncio.create_task(self.stop.wait())
        try:
            while True:
                timeout_s = feed.idle_timeout_s
                if feed.max_connection_age_s is not None:
                    age_left_s = feed.max_connection_age_s - (time.monotonic() - opened)
                    if age_left_s <= 0:
                        return "max_age"
                    timeout_s = min(timeout_s, age_left_s)
                receive = asyncio.ensure_future(ws.recv())
                done, _ = await asyncio.wait(
                    {receive, stop_wait}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
                )
                if stop_wait in done:
                    receive.cancel()
                    return "stopped"
                if receive not in done:
                    receive.cancel()
                    if feed.max_connection_age_s is not None and (
                        time.monotonic() - opened >= feed.max_connection_age_s
                    ):
                        return "max_age"
                    raise IdleConnection(f"no message for {feed.idle_timeout_s:.0f}s")
                await self._handle(ws, receive.result())
        finally:
            stop_wait.cancel()
            if pinger is not None:
                pinger.cancel()

    async def _handle(self, ws: ClientConnection, message: str | bytes) -> None:
        received_ts = now_ms()
        try:
            text = self.feed.decode(message)
        except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
            self.pipeline.metrics.frames.labels(self.feed.name).inc()
            self.pipeline.dead_letter(Rejected("undecodable_frame", f"{exc!r}: {message[:200]!r}"))
            return
        reply = self.feed.answer(text)
        if reply is not None:  # a server heartbeat: answered, not liquidation data
            await ws.send(reply)
            return
        await self.pipeline.on_frame(text, received_ts)
