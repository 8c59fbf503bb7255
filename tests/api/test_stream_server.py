"""/api/stream on a real aiohttp server and real sockets, fed by hand (no Kafka): a client that
stops reading is ended once its write stalls, while a reading client gets every change,
coalesced per tick, and the worker-side tick never waits for either."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from stream.config import load_settings
from stream.localkafka import free_port
from stream.view.consumer import ViewFeeder
from stream.view.server import build_app
from stream.view.state import GlobalView
from tests.api.test_view import FEEDS, WINDOWS, key, totals


@pytest.fixture
async def served() -> AsyncIterator[tuple[ViewFeeder, int]]:
    feeder = ViewFeeder(load_settings(stream_max_lag="1s"), GlobalView(WINDOWS, FEEDS))
    feeding = asyncio.create_task(asyncio.Event().wait())  # stands in for the Kafka reader
    runner = web.AppRunner(build_app(feeder, feeding), shutdown_timeout=1.0)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield feeder, port
    finally:
        feeding.cancel()
        feeder.close_streams()
        await runner.cleanup()


async def until(what: str, condition, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0.05)


async def test_a_client_that_stops_reading_is_ended_the_others_get_everything(
    served: tuple[ViewFeeder, int],
) -> None:
    feeder, port = served
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting
    stalled.connect(("127.0.0.1", port))
    stalled.sendall(b"GET /api/stream HTTP/1.0\r\nHost: x\r\n\r\n")  # and never reads again
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/api/stream", params={"window": "24h"}) as reading,
    ):
        await until("both subscribed", lambda: len(feeder.subscribers) == 2)
        padding = "x" * 200_000  # more than the kernel buffers hold, within a few ticks
        sent = []
        for n in range(1, 201):
            for window in ("1h", "24h"):
                record = {**totals(None, None, window, n), "pad": padding}
                feeder._apply(feeder.topics.totals, key(record).encode(), orjson.dumps(record))
            if n % 4 == 0:  # four updates of each key per tick: coalesced to the latest
                feeder.tick()
                sent.append(n)
            await asyncio.sleep(0.01)

        def ended() -> bool:
            feeder.tick()  # the feeder's ticks cut a stalled write off
            return feeder.dropped == 1

        await until("the stalled client ended", ended)
        assert len(feeder.subscribers) == 1
        counts = []
        while not counts or counts[-1] != sent[-1]:
            line = await asyncio.wait_for(reading.content.readline(), 30)
            if line.startswith(b"data: "):
                record = orjson.loads(line[6:])
                assert record["window"] == "24h"  # its filter
                counts.append(record["count"])
        assert counts == sorted(counts) and set(counts) <= set(sent)  # latest per tick only
    stalled.close()
