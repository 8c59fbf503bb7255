"""Webhook notifications: retried with backoff, failures counted, one bad URL blocks nobody."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from stream.config import Settings, load_settings
from stream.kafka import Topics, client_options
from stream.localkafka import free_port
from stream.topics import ensure_topics
from stream.worker.webhooks import WebhookSink, redacted

pytestmark = pytest.mark.kafka


def breach(n: int) -> dict:
    return {
        "rule": "market-5m",
        "state": "breach",
        "metric": "total_usd",
        "window": "5m",
        "exchange": None,
        "coin": None,
        "value": 1e9 + n,
        "threshold": 1e9,
        "ts": 1_762_295_000_000 + n,
        "event_id": f"e{n}",
    }


async def test_webhooks_retry_count_failures_and_never_block(kafka_settings: Settings) -> None:
    received: list[dict] = []
    calls = {"flaky": 0, "hangs": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["flaky"] += 1
        if calls["flaky"] % 3:  # two failures before each success
            return web.Response(status=503)
        received.append(await request.json())
        return web.Response(status=204)

    async def refuses(request: web.Request) -> web.Response:
        return web.Response(status=404)

    released = asyncio.Event()

    async def hangs(request: web.Request) -> web.Response:
        calls["hangs"] += 1
        await released.wait()  # no answer until the test ends: each attempt times out
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/secret-token", flaky)
    app.router.add_post("/refuses", refuses)
    app.router.add_post("/hangs", hangs)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    dead_port = free_port()  # nothing listens there
    urls = [
        f"http://127.0.0.1:{port}/hook/secret-token",
        f"http://127.0.0.1:{port}/refuses",
        f"http://127.0.0.1:{dead_port}/x",
        f"http://127.0.0.1:{port}/hangs",
    ]
    settings = load_settings(
        kafka_bootstrap=kafka_settings.kafka_bootstrap,
        topic_prefix=kafka_settings.topic_prefix,
        webhook_urls=",".join(urls),
        webhook_attempts=3,
        webhook_timeout="2s",
    )
    await ensure_topics(settings)
    topic = Topics.with_prefix(settings.topic_prefix).breaches
    registry = CollectorRegistry()
    sink = WebhookSink(settings, topic, "test-webhooks", registry, wait_initial_s=0.01)
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    producer = AIOKafkaProducer(**client_options(settings))
    await producer.start()
    try:
        await asyncio.wait_for(sink.ready.wait(), 60)
        await asyncio.sleep(1)
        for n in range(5):
            await producer.send_and_wait(topic, orjson.dumps(breach(n)), key=b"market-5m")
        deadline = time.monotonic() + 60

        def sample(name: str, webhook: int) -> float | None:
            return registry.get_sample_value(name, {"webhook": str(webhook)})

        delivered, failures = (
            "liqstream_webhook_delivered_total",
            "liqstream_webhook_failures_total",
        )
        while time.monotonic() < deadline and (
            len(received) < 5 or sample(failures, 2) != 5 or sample(failures, 3) != 5
        ):
            await asyncio.sleep(0.1)
        # The hanging URL (the fourth) takes 3 attempts x 2 s timeout per record, 30 s or more
        # for the five: the others are all done before it is (no clock bound: a busy machine
        # only slows both).
        assert (sample(failures, 4) or 0) < 5
        assert calls["hangs"] < 15
        assert [r["event_id"] for r in received] == [f"e{n}" for n in range(5)]
        assert calls["flaky"] == 15  # three attempts each, the third taken
        assert sample(delivered, 1) == 5 and sample(failures, 1) == 0
        assert sample(failures, 2) == 5 and sample(delivered, 2) == 0  # refused: no retry
        assert sample(failures, 3) == 5 and sample(delivered, 3) == 0
    finally:
        stop.set()
        await task
        released.set()
        await producer.stop()
        await runner.cleanup()


def test_logged_urls_hide_paths_and_tokens() -> None:
    assert redacted("https://hooks.slack.com/services/T0/B0/XYZ") == "https://hooks.slack.com/…"
    assert redacted("http://127.0.0.1:8080/hook?token=1") == "http://127.0.0.1:8080/…"


def test_webhook_urls_must_be_http() -> None:
    from stream.errors import ConfigError

    with pytest.raises(ConfigError) as error:
        load_settings(webhook_urls="ftp://example.com/hook")
    assert "LIQSTREAM_WEBHOOK_URLS" in str(error.value)
    assert "ftp://example.com" not in str(error.value)  # secret: not echoed


def test_a_url_listed_twice_gets_one_loop_and_one_group() -> None:
    """Two loops in one consumer group would share one partition: one would never start."""
    settings = load_settings(
        webhook_urls="https://a.example/h,https://b.example/h,https://a.example/h"
    )
    sink = WebhookSink(settings, "breaches", "g", CollectorRegistry())
    assert sink.urls == ["https://a.example/h", "https://b.example/h"]
    assert len({sink.group_of(url) for url in sink.urls}) == 2
