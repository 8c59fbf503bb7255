"""The worker answers to LIQSTREAM_* only: Faust's own environment variables (read by Faust
ahead of the arguments it is given) change neither its address nor the pages it serves, and a
foreign `WEB_PORT` such as Kubernetes injects for a Service named `web` does not stop it."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stream.config import Settings, load_settings
from stream.topics import ensure_topics
from stream.worker.app import create_app
from stream.worker.environment import FAUST_IMPORT_VARIABLES, drop_faust_variables
from tests.worker.test_worker_kafka import Worker, worker_settings

# What an environment may hold for reasons of its own, each of which Faust would honour:
# settings, read when the app is made...
FAUST_SETTINGS = {
    "WEB_PORT": "tcp://10.0.0.5:80",  # Kubernetes, for a Service named `web`
    "WEB_BIND": "127.0.0.2",
    "WEB_HOST": "elsewhere.example",
    "APP_WEB_ENABLED": "false",
    "APP_WEB_TABLES_ENABLED": "true",  # /table/ would list the table's contents
    "APP_WEB_ROUTER_ENABLED": "true",
    "APP_WEB_STATS_ENABLED": "true",
    "APP_WEB_GRAPH_ENABLED": "true",
    "APP_WEB_METRICS_ENABLED": "true",
    "APP_DATADIR": "/nonexistent/faust",
}
# ...and variables read when faust is imported.
FAUST_IMPORT = {
    "FAUST_WEB_PORT": "tcp://10.0.0.6:80",  # Kubernetes, for a Service named `faust-web`
    "F_WEB_BIND": "127.0.0.2",
    "FAUST_LOOP": "eventlet",  # not installed: Faust would fail to import
    "FAUST_DEBUG": "1",
}


def test_create_app_reads_nothing_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in FAUST_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LIQSTREAM_WEB_HOST", "127.0.0.3")
    monkeypatch.setenv("LIQSTREAM_WEB_PORT", "7077")
    conf = create_app(load_settings(data_dir=tmp_path)).conf
    assert (conf.web_bind, conf.web_host, conf.web_port) == ("127.0.0.3", "127.0.0.3", 7077)
    assert conf.web_enabled
    assert not (
        conf.web_tables_enabled
        or conf.web_router_enabled
        or conf.web_stats_enabled
        or conf.web_graph_enabled
        or conf.web_metrics_enabled
    )
    assert str(conf.datadir).startswith(str(tmp_path))


def test_faust_import_variables_are_dropped() -> None:
    environ = {"FAUST_WEB_PORT": "tcp://10.0.0.6:80", "F_LOOP": "eventlet", "PATH": "/bin"}
    assert drop_faust_variables(environ) == ["FAUST_WEB_PORT", "F_LOOP"]
    assert environ == {"PATH": "/bin"}
    assert "FAUST_DATADIR" in FAUST_IMPORT_VARIABLES and "F_WEB_BIND" in FAUST_IMPORT_VARIABLES


async def get_status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as response:
        return response.status


async def wait_ready(base: str, worker: Worker, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            assert worker.process is not None and worker.process.poll() is None, (
                worker.log_path.read_text()[-3000:]
            )
            try:
                if await get_status(session, f"{base}/readyz") == 200:
                    return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.5)
    raise AssertionError(f"never ready: {worker.log_path.read_text()[-3000:]}")


@pytest.mark.kafka
async def test_a_worker_in_a_foreign_environment(kafka_settings: Settings, tmp_path: Path) -> None:
    settings = worker_settings(kafka_settings)
    await ensure_topics(settings)
    worker = Worker(settings, tmp_path, "w")
    worker.env.update(FAUST_SETTINGS | FAUST_IMPORT)
    worker.env.pop("LIQSTREAM_WEB_HOST", None)  # the default, 127.0.0.1, applies
    port = worker.env["LIQSTREAM_WEB_PORT"]
    base = f"http://127.0.0.1:{port}"
    worker.start()
    try:
        await wait_ready(base, worker)
        async with aiohttp.ClientSession() as session:
            assert await get_status(session, f"{base}/healthz") == 200
            assert await get_status(session, f"{base}/api/totals") == 200
            for page in ("/table/", "/table/buckets/", "/router/", "/graph/", "/performance/"):
                assert await get_status(session, base + page) == 404, page
            with pytest.raises(aiohttp.ClientConnectionError):  # not on WEB_BIND's address
                await get_status(session, f"http://127.0.0.2:{port}/healthz")
    finally:
        worker.stop(signal.SIGKILL)


def test_static_member_id_follows_the_state_dir(tmp_path: Path) -> None:
    """Same data dir: the same member after a restart (it takes its partitions back at once);
    another data dir or prefix: another member; or an explicit id, or none at all."""

    def member(data_dir: Path = tmp_path / "a", **overrides: Any) -> str | None:
        settings = load_settings(data_dir=data_dir, **overrides)
        return create_app(settings).conf.consumer_group_instance_id

    first = member()
    assert first is not None and first.startswith(socket.gethostname())
    assert member() == first
    assert member(tmp_path / "b") not in (None, first)
    assert member(topic_prefix="other.") not in (None, first)
    assert member(worker_instance_id="worker-3") == "worker-3"
    assert member(worker_instance_id="none") is None
