"""Paced subscribes never hold up reading.

A venue that limits client messages per second makes a long listing take seconds to subscribe.
Meanwhile the connection must read: the frames of the markets already subscribed, the answers
to its subscribes, and server heartbeats that must be answered within a short time or the
venue closes the connection. The fake venue below is Lighter's stream server (its documented
per-connection rules: `FakeSession`) plus two rules of its own, stated here:
- at most `VENUE_MESSAGES_PER_SECOND` client messages in any rolling second (more are refused
  with Lighter's rate-limit error); the feed paces itself at half that, leaving room for jitter;
- a `{"type":"ping"}` on connecting and every `PING_INTERVAL_S`, which must be answered by a
  `{"type":"pong"}` within `PONG_TIMEOUT_S`, else the connection is closed (1008).
Each market's first liquidation is sent right after its subscribe answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from stream.collectors import lighter
from stream.collectors.connection import FeedConnection
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline
from stream.collectors.venue import Instrument
from stream.simulators import simulator_for
from stream.simulators.lighter import RATE_LIMITED, FakeSession
from tests.collectors.test_shells import TOPICS, RecordingPublisher

MARKETS = 40
VENUE_MESSAGES_PER_SECOND = 20
FEED_MESSAGES_PER_SECOND = 10.0  # 40 markets: about 4 s of pacing
PING_INTERVAL_S = 0.5
PONG_TIMEOUT_S = 2.0
PING = '{"type":"ping"}'
PONG = '{"type":"pong"}'


def answer(text: str) -> str | None:
    return PONG if text == PING else None


(LIGHTER,) = lighter.FEEDS
assert LIGHTER.per_symbol is not None
FEED = dataclasses.replace(
    LIGHTER,
    answer=answer,
    per_symbol=dataclasses.replace(
        LIGHTER.per_symbol,
        limits=dataclasses.replace(
            LIGHTER.per_symbol.limits, messages_per_second=FEED_MESSAGES_PER_SECOND
        ),
    ),
)
INSTRUMENTS = [Instrument(f"C{n}:{n}", f"C{n}", "USD", "linear") for n in range(MARKETS)]


class PacedVenue:
    """The fake venue: records what the client sent, in order, and what the collector had
    published when each client message arrived."""

    def __init__(self, published: Callable[[], int]) -> None:
        self.published = published
        self.connections = 0
        self.closed_for: list[str] = []
        # (kind, liquidations published by then) per client message: "subscribe" or "pong"
        self.arrivals: list[tuple[str, int]] = []
        self.sessions: list[FakeSession] = []

    async def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        session = FakeSession()
        self.sessions.append(session)
        ponged = asyncio.Event()
        pinger = asyncio.create_task(self._ping(ws, ponged))
        window: deque[float] = deque()
        try:
            async for message in ws:
                text = message if isinstance(message, str) else message.decode()
                now_s = time.monotonic()
                while window and now_s - window[0] >= 1.0:
                    window.popleft()
                window.append(now_s)
                if text == PONG:
                    self.arrivals.append(("pong", self.published()))
                    ponged.set()
                    continue
                self.arrivals.append(("subscribe", self.published()))
                if len(window) > VENUE_MESSAGES_PER_SECOND:
                    error = {"error": {"code": RATE_LIMITED, "message": "too fast"}}
                    await ws.send(orjson.dumps(error).decode())
                    continue
                replies, new_topics = session.reply(text)
                for reply in replies:
                    await ws.send(reply)
                for channel in new_topics:
                    market = int(channel.removeprefix("trade/"))
                    frame = simulator_for(FEED).render(
                        INSTRUMENTS[market], "long", 2.0, 1.0, 1_762_290_000_000, market
                    )
                    await ws.send(frame)
        except ConnectionClosed:
            pass
        finally:
            pinger.cancel()

    async def _ping(self, ws: ServerConnection, ponged: asyncio.Event) -> None:
        while True:
            ponged.clear()
            await ws.send(PING)
            try:
                await asyncio.wait_for(ponged.wait(), PONG_TIMEOUT_S)
            except TimeoutError:
                self.closed_for.append("ping unanswered")
                await ws.close(code=1008, reason="ping unanswered")
                return
            await asyncio.sleep(PING_INTERVAL_S)


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.05)
    assert condition(), what


async def test_reading_goes_on_while_a_long_listing_is_paced(tmp_path: Path) -> None:
    """40 markets at 10 messages a second: while they are sent, every frame is read and every
    ping answered; the venue never closes the connection, nor refuses a message as too fast,
    and every market is subscribed and live."""
    (tmp_path / "lighter.json").write_bytes(
        orjson.dumps([dataclasses.asdict(instrument) for instrument in INSTRUMENTS])
    )
    book = InstrumentBook(FEED, tmp_path, url="")
    publisher = RecordingPublisher()

    def live() -> set[str]:
        return {event["symbol"] for event in publisher.values(TOPICS.liquidations)}

    def coverage() -> dict:
        records = [s for s in publisher.values(TOPICS.status) if s["state"] == "coverage"]
        return records[-1] if records else {}

    venue = PacedVenue(lambda: len(publisher.values(TOPICS.liquidations)))
    server = await serve(venue.handle, "127.0.0.1", 0)
    port = next(iter(server.sockets)).getsockname()[1]
    pipeline = FeedPipeline(FEED, book, publisher, TOPICS, CollectorMetrics())  # type: ignore[arg-type]
    connection = FeedConnection(pipeline, f"ws://127.0.0.1:{port}/stream", max_backoff_s=0.2)
    task = asyncio.create_task(connection.run())
    try:
        await _until(lambda: len(live()) == MARKETS, "every market live")
        await _until(lambda: coverage().get("instruments_subscribed") == MARKETS, "coverage")
        assert coverage()["rejected"] == []
        assert venue.connections == 1 and venue.closed_for == []
        (session,) = venue.sessions
        assert session.topics == {f"trade/{n}" for n in range(MARKETS)}
        subscribes = [i for i, (kind, _) in enumerate(venue.arrivals) if kind == "subscribe"]
        assert len(subscribes) == MARKETS  # each market once: nothing refused, nothing retried
        last_subscribe = subscribes[-1]
        # before the last subscribe left, pings had been answered and the frames of the
        # markets subscribed earlier read and published
        pongs_before = [i for i, (kind, _) in enumerate(venue.arrivals) if kind == "pong"]
        assert pongs_before and pongs_before[0] < last_subscribe
        assert venue.arrivals[last_subscribe][1] > 0
    finally:
        connection.stop.set()
        await task
        server.close()
        await server.wait_closed()
