"""The websocket loops of one feed: connect, subscribe, keep alive, read, reconnect.

Generic over venues: everything venue-specific (URL, subscribe messages, heartbeats,
compression, maximum connection age, subscription limits and answers) comes from the `Feed`.

A feed that subscribes one topic per instrument (`Feed.per_symbol`) waits (bounded) for the
first REST listing, then spreads the topics over as many connections as the venue's limits
require (`stream.collectors.subscriptions`). After every listing change the live connections
subscribe new instruments and unsubscribe delisted ones (a venue that cannot unsubscribe gets
that connection renewed). Every subscribe answer is read: a refused topic is logged with the
venue's reason, counted (`liqstream_subscription_rejects_total`), retried alone once, and the
rest of its batch sent again. Subscribe and unsubscribe messages leave from each connection's own
sender task at the venue's pace (`messages_per_second`, shared by the feed's connections as
venues count it per IP), so a long listing never holds up
reading: frames, server heartbeats (answered at once) and subscribe answers are read while the
rest of the listing is still being sent. A connection the listing leaves without topics (its
instruments delisted) closes (`disconnected`, reason `no_topics`: not a loss, no gap) and opens
again when a later listing gives it some; until then the feed counts as connected without it.

Each connect, disconnect and gap (from the moment a connection was lost until the next one is
subscribed) goes to `collectors.status`, and so does a `coverage` record (instruments listed,
subscribed, topics refused) on every (re)connect and whenever those change. A `heartbeat`
record every `status_interval_s` repeats the feed's present state (connected, coverage, last
frame), so a reader can tell a feed whose collector died (kill -9 sends no `disconnected`) from
a quiet one: its heartbeats stop.

Supervision: an unexpected exception while handling one frame dead-letters that frame
(`internal_error`) and the connection reads on; one anywhere else in a connection's loop ends
that connection, which reconnects with backoff like after any other loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from stream.collectors.pipeline import FeedPipeline, now_ms
from stream.collectors.publisher import backoff_s
from stream.collectors.subscriptions import Outcome, Pacer, Request, SubscriptionState, assign
from stream.errors import Rejected

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # oversized frames are dead-lettered by the parser
OPEN_TIMEOUT_S = 15.0
COVERAGE_DELAY_S = 0.5  # coalesces a burst of acknowledgements into one coverage record
ACK_CHECK_S = 1.0


class IdleConnection(Exception):
    """No message within the feed's idle timeout."""


async def _pinger(ws: ClientConnection, text: str, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        await ws.send(text)


@dataclass(eq=False)
class Shard:
    """One websocket connection of a feed and the topics it is meant to carry."""

    index: int
    topics: set[str] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    state: SubscriptionState | None = None  # while connected (per-symbol feeds)
    outbox: asyncio.Queue[Request] | None = None  # requests waiting for the sender's pace
    refused: dict[str, str] = field(default_factory=dict)  # given up on by the last session
    connected: bool = False
    flowing: bool = False  # a frame arrived since it connected
    attempt: int = 0
    gap_start_ms: int | None = None


class FeedConnection:
    """Runs until `stop` is set; each connection reconnects with capped, jittered backoff."""

    def __init__(
        self,
        pipeline: FeedPipeline,
        url: str | None = None,
        *,
        max_backoff_s: float = 30.0,
        first_listing_timeout_s: float = 10.0,
        ack_timeout_s: float = 10.0,
        status_interval_s: float = 30.0,
    ) -> None:
        self.pipeline = pipeline
        self.feed = pipeline.feed
        self.url = url or self.feed.url
        self.max_backoff_s = max_backoff_s
        self.first_listing_timeout_s = first_listing_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.status_interval_s = status_interval_s
        self.last_frame_ms: int | None = None  # receive time of the latest frame
        self.stop = asyncio.Event()
        self.connections = 0
        self.shards: list[Shard] = []
        self.left_out: list[str] = []  # topics beyond the venue's connections per IP
        # listed instrument -> its topic; several may share one (HTX futures: one per coin)
        self._symbol_topic: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._grown = asyncio.Event()
        self._coverage_timer: asyncio.TimerHandle | None = None
        self._last_coverage: tuple[object, ...] | None = None
        self._stop_reason = "shutdown"
        self._restart_gap_ms: int | None = None  # a crashed run's connections went down then
        per_symbol = self.feed.per_symbol
        self._pacer = Pacer(per_symbol.limits.messages_per_second if per_symbol else None)

    # -- the feed: its connections ---------------------------------------------------------

    async def run(self) -> None:
        """Run every connection of the feed; raises if one of them ends on its own."""
        book = self.pipeline.book
        self.shards, self._tasks, self._last_coverage = [], [], None
        self._stop_reason = "shutdown"
        gap_start_ms, self._restart_gap_ms = self._restart_gap_ms, None
        listener = self._relist if self.feed.per_symbol is not None else self._coverage_soon
        stop_wait = asyncio.create_task(self.stop.wait())
        if self.feed.per_symbol is not None:
            listing = asyncio.create_task(book.wait_first_listing(self.first_listing_timeout_s))
            await asyncio.wait({listing, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
            listing.cancel()
            self._relist()
        else:
            self.shards.append(Shard(0))
        for shard in self.shards:  # after a crashed run: its outage is a gap of these
            shard.gap_start_ms = gap_start_ms
        book.on_change.append(listener)
        heartbeats = asyncio.create_task(self._heartbeats())
        try:
            while not self.stop.is_set():
                for shard in self.shards[len(self._tasks) :]:
                    self._tasks.append(
                        asyncio.create_task(self._run_shard(shard), name=f"{self.feed.name}")
                    )
                self._grown.clear()
                grown = asyncio.create_task(self._grown.wait())
                done, _ = await asyncio.wait(
                    {stop_wait, grown, *self._tasks}, return_when=asyncio.FIRST_COMPLETED
                )
                grown.cancel()
                ended = [t for t in self._tasks if t in done]
                if ended and not self.stop.is_set():
                    error = ended[0].exception()
                    raise error or RuntimeError(f"{self.feed.name}: a connection loop ended")
        finally:
            if not self.stop.is_set():  # a crash: the supervisor runs the feed again
                self._stop_reason = "restart"
                starts = [s.gap_start_ms for s in self.shards if s.gap_start_ms is not None]
                if any(s.connected for s in self.shards):
                    starts.append(now_ms())
                self._restart_gap_ms = min(starts, default=None)
            with contextlib.suppress(ValueError):
                book.on_change.remove(listener)
            stop_wait.cancel()
            heartbeats.cancel()
            self.stop.set()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._coverage_timer is not None:
                self._coverage_timer.cancel()
                self._coverage_timer = None
            self.pipeline.metrics.connected.labels(self.feed.name).set(0)

    def _relist(self) -> None:
        """The listing changed: recompute which connection carries which topic."""
        per_symbol = self.feed.per_symbol
        assert per_symbol is not None
        self._symbol_topic = {s: per_symbol.topic(s) for s in self.pipeline.book.symbols()}
        topics, left_out = assign(
            [shard.topics for shard in self.shards],
            set(self._symbol_topic.values()),
            per_symbol.limits,
        )
        for shard, wanted in zip(self.shards, topics, strict=False):
            if wanted != shard.topics:
                shard.topics = wanted
                shard.changed.set()
        for index in range(len(self.shards), len(topics)):
            self.shards.append(Shard(index, topics[index]))
            self._grown.set()
        if left_out and left_out != self.left_out:
            log.error(
                "%d topics left out: the venue allows %s connections per IP",
                len(left_out),
                per_symbol.limits.connections_per_ip,
                extra={"feed": self.feed.name},
            )
        self.left_out = left_out
        self._coverage_soon()

    # -- coverage and the connected gauge ----------------------------------------------------

    def _coverage(self) -> tuple[int, int, list[dict[str, str]], bool]:
        listed = len(self.pipeline.book.symbols())
        per_symbol = self.feed.per_symbol
        if per_symbol is None:
            connected = bool(self.shards) and all(s.connected for s in self.shards)
            return listed, listed if connected else 0, [], True
        acked: set[str] = set()
        rejected: list[dict[str, str]] = []
        for shard in self.shards:
            refused = shard.refused  # while disconnected: what the venue refused last time
            if shard.state is not None and shard.connected:
                acked |= shard.state.acked & shard.topics
                refused = shard.state.rejected
            rejected += [
                {"topic": topic, "reason": reason}
                for topic, reason in sorted(refused.items())
                if topic in shard.topics
            ]
        limit = per_symbol.limits.connections_per_ip
        rejected += [
            {"topic": topic, "reason": f"over the venue's {limit} connections per IP"}
            for topic in self.left_out
        ]
        # instruments, not topics: listed and subscribed count the same things, so a coin topic
        # that covers three contracts counts three once acknowledged
        subscribed = sum(1 for topic in self._symbol_topic.values() if topic in acked)
        return listed, subscribed, rejected, False

    def _emit_coverage(self, *, force: bool = False) -> None:
        if self._coverage_timer is not None:  # this record replaces the scheduled one
            self._coverage_timer.cancel()
            self._coverage_timer = None
        listed, subscribed, rejected, wildcard = self._coverage()
        key = (listed, subscribed, tuple(tuple(r.items()) for r in rejected))
        if force or key != self._last_coverage:
            self._last_coverage = key
            self.pipeline.coverage(
                listed=listed, subscribed=subscribed, rejected=rejected, wildcard=wildcard
            )

    def _coverage_soon(self) -> None:
        if self._coverage_timer is None:
            loop = asyncio.get_running_loop()
            self._coverage_timer = loop.call_later(COVERAGE_DELAY_S, self._emit_coverage)

    def _carrying(self) -> list[Shard]:
        """The connections meant to be open: all, or (per-symbol) those with topics."""
        if self.feed.per_symbol is None:
            return self.shards
        return [shard for shard in self.shards if shard.topics]

    def _connected(self) -> bool:
        carrying = self._carrying()
        return bool(carrying) and all(s.connected and s.flowing for s in carrying)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.status_interval_s)
            try:
                self._heartbeat()
            except Exception as exc:  # supervision boundary: logged, counted, dead-lettered
                self.pipeline.internal_error(exc, None)

    def _heartbeat(self) -> None:
        """The `heartbeat` status record: the feed's present state, every interval."""
        listed, subscribed, rejected, wildcard = self._coverage()
        self.pipeline.status(
            "heartbeat",
            interval_s=self.status_interval_s,
            connected=self._connected(),
            connections=len(self._carrying()),
            connections_up=sum(1 for s in self.shards if s.connected),
            last_frame_ts=self.last_frame_ms,
            instruments_listed=listed,
            instruments_subscribed=subscribed,
            rejected=rejected,
            wildcard=wildcard,
        )

    def _update_connected(self) -> None:
        self.pipeline.metrics.connected.labels(self.feed.name).set(1 if self._connected() else 0)

    # -- one connection ----------------------------------------------------------------------

    async def _run_shard(self, shard: Shard) -> None:
        feed = self.feed
        metrics = self.pipeline.metrics
        while not self.stop.is_set():
            if feed.per_symbol is not None and not shard.topics:
                await self._until_topics(shard)
                continue
            reason = "stopped"
            try:
                async with connect(
                    self.url,
                    max_size=MAX_MESSAGE_BYTES,
                    open_timeout=OPEN_TIMEOUT_S,
                    close_timeout=5,
                    additional_headers=feed.handshake_headers or None,
                ) as ws:
                    reason = await self._session(ws, shard)
            except (OSError, TimeoutError, WebSocketException, IdleConnection) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if isinstance(exc, InvalidURI | InvalidHandshake):
                    log.error("cannot connect to %s: %s", self.url, exc)
            except Exception as exc:  # supervision boundary: counted, dead-lettered, reconnected
                self.pipeline.internal_error(exc, None)
                reason = f"internal_error: {exc!r}"
            shard.connected = shard.flowing = False
            if shard.state is not None:  # the next session reports and retries them alone
                shard.refused = dict(shard.state.rejected)
            shard.state = shard.outbox = None
            self._update_connected()
            if self.stop.is_set():
                self.pipeline.status("disconnected", reason=self._stop_reason, **self._which(shard))
                return
            self._coverage_soon()
            if reason == "no_topics":  # nothing to carry: closed on purpose, not a loss
                self.pipeline.status("disconnected", reason=reason, **self._which(shard))
                log.info(
                    "connection %d closed: the listing left it no topics",
                    shard.index,
                    extra={"feed": feed.name},
                )
                continue
            if shard.gap_start_ms is None:
                shard.gap_start_ms = now_ms()
            metrics.reconnects.labels(feed.name).inc()
            self.pipeline.status("disconnected", reason=reason, **self._which(shard))
            renewed = reason in ("max_age", "relisted")
            delay_s = 0.0 if renewed else backoff_s(shard.attempt, cap_s=self.max_backoff_s)
            shard.attempt += 1
            log.warning(
                "disconnected (%s); reconnecting in %.1fs",
                reason,
                delay_s,
                extra={"feed": feed.name},
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), delay_s)

    async def _until_topics(self, shard: Shard) -> None:
        """A connection with no topics stays closed until the listing gives it some."""
        shard.gap_start_ms = None  # what it carried was delisted: no gap to report
        shard.changed.clear()
        changed = asyncio.create_task(shard.changed.wait())
        stop_wait = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({changed, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            stop_wait.cancel()

    def _which(self, shard: Shard) -> dict[str, int]:
        return {"connection": shard.index} if self.feed.per_symbol is not None else {}

    async def _session(self, ws: ClientConnection, shard: Shard) -> str:
        feed = self.feed
        per_symbol = feed.per_symbol
        shard.changed.clear()
        if per_symbol is not None:
            for message in per_symbol.preamble:
                await ws.send(message)
            shard.state = SubscriptionState(per_symbol.limits, refused=shard.refused)
            shard.outbox = asyncio.Queue()
            self._send(shard, shard.state.plan(shard.topics, time.monotonic()))
        else:
            symbols = self.pipeline.book.symbols() if feed.needs_symbols else []
            for message in feed.subscribe(symbols):
                await ws.send(message)
        self.connections += 1
        shard.connected = True
        shard.attempt = 0
        self.pipeline.status("connected", url=self.url, **self._which(shard))
        if shard.gap_start_ms is not None:
            self.pipeline.status(
                "gap", gap_start=shard.gap_start_ms, gap_end=now_ms(), **self._which(shard)
            )
            shard.gap_start_ms = None
        log.info("connected", extra={"feed": feed.name, "url": self.url})
        self._emit_coverage(force=True)
        return await self._read(ws, shard)

    def _send(self, shard: Shard, requests: list[Request]) -> None:
        """Queue requests for the connection's sender; their answer clocks start when sent."""
        if shard.state is None or shard.outbox is None:
            return
        shard.state.queued(requests)
        for request in requests:
            shard.outbox.put_nowait(request)

    async def _sender(self, ws: ClientConnection, shard: Shard) -> None:
        """Send queued requests in order, no faster than the venue's messages per second."""
        per_symbol, state, outbox = self.feed.per_symbol, shard.state, shard.outbox
        assert per_symbol is not None and state is not None and outbox is not None
        while True:
            request = await outbox.get()
            wait_s = self._pacer.slot(time.monotonic())
            if wait_s > 0:
                await asyncio.sleep(wait_s)
            await ws.send(per_symbol.request(request.op, request.topics, request.req_id))
            state.sent(request.req_id, time.monotonic())

    async def _on_listing(self, ws: ClientConnection, shard: Shard) -> bool:
        """Subscribe/unsubscribe what the new listing asks; False: renew the connection."""
        per_symbol, state = self.feed.per_symbol, shard.state
        if per_symbol is None or state is None:
            return True
        requests = state.plan(shard.topics, time.monotonic())
        if not per_symbol.can_unsubscribe and any(r.op == "unsubscribe" for r in requests):
            return False
        self._send(shard, requests)
        self._coverage_soon()
        return True

    async def _apply(self, ws: ClientConnection, shard: Shard, outcome: Outcome) -> None:
        name = self.feed.name
        for topic, reason in outcome.refused:
            self.pipeline.metrics.subscription_rejects.labels(name).inc()
            log.warning("venue refused %s: %s", topic, reason, extra={"feed": name, "topic": topic})
        for topic, reason in outcome.given_up:
            log.error(
                "%s stays unsubscribed (refused again alone): %s",
                topic,
                reason,
                extra={"feed": name, "topic": topic},
            )
        for topic, reason in outcome.not_unsubscribed:
            log.warning(
                "venue refused to unsubscribe %s (its frames are still parsed): %s",
                topic,
                reason,
                extra={"feed": name, "topic": topic},
            )
        requests = outcome.requests
        per_symbol = self.feed.per_symbol
        if shard.state is not None and per_symbol is not None and per_symbol.can_unsubscribe:
            # the listing may have changed while this answer was on its way
            requests = requests + shard.state.plan(shard.topics, time.monotonic())
        self._send(shard, requests)
        if any(s.state is not None and s.state.pending for s in self.shards):
            self._coverage_soon()  # more answers to come: one record for the burst
        else:
            self._emit_coverage()  # settled: say so at once

    async def _read(self, ws: ClientConnection, shard: Shard) -> str:
        """Read until the connection ends; return why it ended."""
        feed = self.feed
        opened = last_message = time.monotonic()
        pinger = (
            asyncio.create_task(_pinger(ws, feed.ping_text, feed.ping_interval_s))
            if feed.ping_text
            else None
        )
        sender = asyncio.create_task(self._sender(ws, shard)) if shard.outbox is not None else None
        stop_wait = asyncio.create_task(self.stop.wait())
        changed = asyncio.create_task(shard.changed.wait())
        receive: asyncio.Future[str | bytes] = asyncio.ensure_future(ws.recv())
        try:
            while True:
                if feed.per_symbol is not None and not shard.topics:
                    return "no_topics"  # emptied as it connected
                now = time.monotonic()
                timeout_s = feed.idle_timeout_s - (now - last_message)
                if feed.max_connection_age_s is not None:
                    age_left_s = feed.max_connection_age_s - (now - opened)
                    if age_left_s <= 0:
                        return "max_age"
                    timeout_s = min(timeout_s, age_left_s)
                if shard.state is not None and shard.state.pending:
                    timeout_s = min(timeout_s, ACK_CHECK_S)
                if timeout_s <= 0:
                    raise IdleConnection(f"no message for {feed.idle_timeout_s:.0f}s")
                waiters: set[asyncio.Future[object]] = {receive, stop_wait, changed}  # type: ignore[arg-type]
                if sender is not None:
                    waiters.add(sender)  # type: ignore[arg-type]
                done, _ = await asyncio.wait(
                    waiters,
                    timeout=timeout_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stop_wait in done:
                    return "stopped"
                if sender is not None and sender in done:
                    sender.result()  # a failed send ended the connection: raise why
                    return "sender_ended"
                if changed in done:
                    shard.changed.clear()
                    changed = asyncio.create_task(shard.changed.wait())
                    if feed.per_symbol is not None and not shard.topics:
                        return "no_topics"  # its instruments were delisted
                    if not await self._on_listing(ws, shard):
                        return "relisted"
                if receive in done:
                    last_message = time.monotonic()
                    message = receive.result()
                    receive = asyncio.ensure_future(ws.recv())
                    await self._handle(ws, shard, message)
                if shard.state is not None and shard.state.pending:
                    for outcome in shard.state.expire(time.monotonic(), self.ack_timeout_s):
                        await self._apply(ws, shard, outcome)
        finally:
            for task in (stop_wait, changed, receive):
                task.cancel()
            for helper in (pinger, sender):
                if helper is not None:
                    helper.cancel()

    async def _handle(self, ws: ClientConnection, shard: Shard, message: str | bytes) -> None:
        if not shard.flowing:
            shard.flowing = True
            self._update_connected()
        try:
            await self._handle_frame(ws, shard, message)
        except (OSError, WebSocketException):
            raise  # the connection itself failed: reconnect
        except Exception as exc:  # supervision boundary: a poison frame never stops the feed
            self.pipeline.internal_error(exc, message)

    async def _handle_frame(self, ws: ClientConnection, shard: Shard, message: str | bytes) -> None:
        received_ts = self.last_frame_ms = now_ms()
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
        per_symbol = self.feed.per_symbol
        if per_symbol is not None and shard.state is not None:
            answer = per_symbol.read_reply(text)
            if answer is not None:
                outcome = shard.state.on_reply(answer, time.monotonic())
                if outcome is not None:
                    await self._apply(ws, shard, outcome)
        await self.pipeline.on_frame(text, received_ts)
