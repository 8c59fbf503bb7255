"""`/healthz` and `/readyz` say 503 while the aggregation agent has crashed and Faust has not
started it again: a worker that serves answers but computes nothing is not healthy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from stream.config import load_settings
from stream.localkafka import free_port
from stream.worker.service import build_worker


class FailingStream:
    """What Faust hands the agent, failing the way an unexpected error would."""

    async def events(self) -> AsyncIterator[object]:
        raise RuntimeError("lost the broker")
        yield  # an async generator


class EmptyStream:
    async def events(self) -> AsyncIterator[object]:
        return
        yield


async def test_a_crashed_agent_makes_the_worker_unhealthy_until_restarted(
    tmp_path: Path,
) -> None:
    settings = load_settings(table_store="memory", data_dir=tmp_path, web_port=free_port())
    app, agents = build_worker(settings)
    (agent,) = app.agents.values()
    assert agent.fun == agents._aggregate  # what Faust supervises and restarts
    base = f"http://127.0.0.1:{settings.web_port}"
    await app.web.start()
    try:
        async with aiohttp.ClientSession() as session:

            async def status(path: str) -> tuple[int, dict]:
                async with session.get(base + path) as response:
                    return response.status, await response.json()

            assert await status("/healthz") == (200, {"status": "ok"})

            try:
                await agents._aggregate(FailingStream())  # type: ignore[arg-type]
            except RuntimeError:
                pass  # Faust's supervisor sees it and starts the agent again (or gives up)
            else:
                raise AssertionError("the agent must not hide its crash from Faust")
            down = {"aggregate": "RuntimeError: lost the broker"}
            assert await status("/healthz") == (503, {"status": "unhealthy", "down": down})
            code, ready = await status("/readyz")
            assert (code, ready["ready"], ready["down"]) == (503, False, down)
            async with session.get(base + "/metrics") as response:
                text = await response.text()
            assert 'liqstream_worker_crashes_total{part="aggregate"} 1.0' in text

            await agents._aggregate(EmptyStream())  # type: ignore[arg-type]  # restarted
            assert await status("/healthz") == (200, {"status": "ok"})
            _, ready = await status("/readyz")
            assert ready["down"] == {}
    finally:
        await app.web.stop()
