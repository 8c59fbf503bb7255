"""`python -m bench.sse_clients PORT COUNT OUT`: COUNT /api/stream clients in a process of
their own (so that the benchmark's producer and request load never delay their reads), for
bench/serving.py. Prints `ready` once every client has its headers; a `reset` line on stdin
forgets what was received so far; end of stdin writes what each client received to OUT (JSON)
and exits. Each client notes the arrival time and `as_of` of every `*:*:24h` totals record.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

MARKET = b'"exchange":null,"coin":null,"window":"24h","as_of":'  # the `*:*:24h` record
CONNECT_BATCH = 50  # clients connecting at once (the listen backlog is 128)


@dataclass
class SseClient(asyncio.Protocol):
    """One /api/stream client: the (arrival time, as_of) of every `*:*:24h` record it got."""

    host: str
    port: int
    seen: list[tuple[float, int]] = field(default_factory=list)
    received_bytes: int = 0
    status: int | None = None
    ended: bool = False
    ready: asyncio.Future[None] | None = None
    _buffer: bytes = b""
    _headers_done: bool = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        request = f"GET /api/stream HTTP/1.0\r\nHost: {self.host}:{self.port}\r\n\r\n"
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.received_bytes += len(data)
        buffer = self._buffer + data if self._buffer else data
        if not self._headers_done:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            self.status = int(buffer.split(b" ", 2)[1])
            self._headers_done = True
            buffer = buffer[end + 4 :]
            if self.ready is not None and not self.ready.done():
                self.ready.set_result(None)
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self._buffer = buffer
            return
        block, self._buffer = buffer[:cut], buffer[cut + 2 :]
        at = block.find(MARKET)
        while at >= 0:
            start = at + len(MARKET)
            end = block.find(b",", start)
            self.seen.append((now, int(block[start:end])))
            at = block.find(MARKET, end)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(ConnectionError("closed before the headers"))


def _itself(client: SseClient) -> SseClient:
    return client


async def connect_clients(port: int, count: int) -> tuple[list[SseClient], list[asyncio.Transport]]:
    loop = asyncio.get_running_loop()
    clients: list[SseClient] = []
    transports: list[asyncio.Transport] = []
    for first in range(0, count, CONNECT_BATCH):
        batch = []
        for _ in range(first, min(first + CONNECT_BATCH, count)):
            client = SseClient("127.0.0.1", port, ready=loop.create_future())
            transport, _ = await loop.create_connection(
                functools.partial(_itself, client), "127.0.0.1", port
            )
            batch.append(client)
            transports.append(transport)
        await asyncio.wait_for(asyncio.gather(*(c.ready for c in batch if c.ready)), 60)
        clients.extend(batch)
    return clients, transports


class LoopLag:
    """How late the event loop runs a 50 ms timer: the clients' own delay, reported apart."""

    def __init__(self) -> None:
        self.lags_ms: list[float] = []

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.05)
            self.lags_ms.append((time.perf_counter() - before - 0.05) * 1000)


async def main(port: int, count: int, out: Path) -> None:
    lag = LoopLag()
    lagging = asyncio.create_task(lag.run())
    clients, transports = await connect_clients(port, count)
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"reset":
            for client in clients:
                client.seen.clear()
                client.received_bytes = 0
            lag.lags_ms.clear()
    lagging.cancel()
    ended = [client.ended for client in clients]
    for transport in transports:
        transport.abort()
    lags = sorted(lag.lags_ms) or [0.0]
    out.write_text(
        json.dumps(
            {
                "clients": [
                    {"seen": c.seen, "bytes": c.received_bytes, "ended": e, "status": c.status}
                    for c, e in zip(clients, ended, strict=True)
                ],
                "loop_lag_p99_ms": lags[int(0.99 * (len(lags) - 1))],
                "loop_lag_max_ms": lags[-1],
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])))
