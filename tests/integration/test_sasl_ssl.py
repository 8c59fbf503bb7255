"""Managed-Kafka security against a real broker: SASL_SSL with SCRAM-SHA-512 and PLAIN.

The broker (tests/conftest.py `sasl_kafka`) has one client listener, SASL_SSL, whose
certificate is signed by a CA made for the session; clients trust it only through
LIQSTREAM_KAFKA_SSL_CAFILE. Every command runs as an operator runs it, a child process
configured by LIQSTREAM_* alone, and nothing it prints may contain a password.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from itertools import islice
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from stream.collectors.registry import FEEDS
from stream.config import Settings, load_settings
from stream.fake_exchange import FakeExchange, generated_frames
from stream.kafka import Topics
from stream.localkafka import LocalKafka, free_port
from tests.collectors.kafka_helpers import consume_until

pytestmark = pytest.mark.kafka

SCRAM, PLAIN = "SCRAM-SHA-512", "PLAIN"
HANG_GUARD_S = 120  # a command that has not exited by then hangs: the test fails, not waits


def credentials(broker: LocalKafka, mechanism: str) -> tuple[str, str]:
    assert broker.sasl is not None
    users = broker.sasl.scram_users if mechanism == SCRAM else broker.sasl.plain_users
    return next(iter(users.items()))


def secrets_of(broker: LocalKafka) -> list[str]:
    assert broker.sasl is not None
    return [*broker.sasl.scram_users.values(), *broker.sasl.plain_users.values()]


def sasl_env(
    broker: LocalKafka, mechanism: str, prefix: str, *, password: str | None = None
) -> dict[str, str]:
    """The environment of a liqstream process against the broker (and nothing inherited
    from the runner's LIQSTREAM_* variables)."""
    user, right = credentials(broker, mechanism)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LIQSTREAM_")}
    return {
        **inherited,
        "LIQSTREAM_KAFKA_BOOTSTRAP": broker.bootstrap,
        "LIQSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "LIQSTREAM_KAFKA_SASL_MECHANISM": mechanism,
        "LIQSTREAM_KAFKA_SASL_USERNAME": user,
        "LIQSTREAM_KAFKA_SASL_PASSWORD": right if password is None else password,
        "LIQSTREAM_KAFKA_SSL_CAFILE": str(broker.ca_file),
        "LIQSTREAM_TOPIC_PREFIX": prefix,
        "LIQSTREAM_METRICS_PORT": "0",
        # the most verbose level: whatever a client library logs shows here
        "LIQSTREAM_LOG_LEVEL": "DEBUG",
    }


def sasl_settings(broker: LocalKafka, mechanism: str, prefix: str) -> Settings:
    user, password = credentials(broker, mechanism)
    return load_settings(
        kafka_bootstrap=broker.bootstrap,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=user,
        kafka_sasl_password=password,
        kafka_ssl_cafile=broker.ca_file,
        topic_prefix=prefix,
    )


def liqstream(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )


def assert_no_secret(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, "a password appears in the output"


@pytest.mark.parametrize("mechanism", [SCRAM, PLAIN])
def test_topics_over_sasl_ssl(sasl_kafka: LocalKafka, topic_prefix: str, mechanism: str) -> None:
    env = sasl_env(sasl_kafka, mechanism, topic_prefix)
    first = liqstream(env, "topics")
    assert first.returncode == 0, first.stderr[-3000:]
    created = first.stdout.removeprefix("created: ").strip().split(", ")
    assert sorted(created) == sorted(Topics.with_prefix(topic_prefix).all())
    user, _ = credentials(sasl_kafka, mechanism)
    assert f"Authenticated as {user} via {mechanism}" in first.stderr  # aiokafka, DEBUG on
    again = liqstream(env, "topics")
    assert again.returncode == 0 and again.stdout.strip() == "all topics exist"
    output = first.stdout + first.stderr + again.stdout + again.stderr
    assert_no_secret(output, secrets_of(sasl_kafka))


WRONG_PASSWORD_RUNS = [
    ("topics", SCRAM, ()),
    ("topics", PLAIN, ()),
    ("collect", SCRAM, ("--exchange", "binance-usdm", "--offline")),
    ("collect", PLAIN, ("--exchange", "binance-usdm", "--offline")),
    ("worker", SCRAM, ()),
    ("api", PLAIN, ()),
]


@pytest.mark.parametrize(("command", "mechanism", "options"), WRONG_PASSWORD_RUNS)
def test_a_wrong_password_stops_the_command_with_the_reason(
    sasl_kafka: LocalKafka,
    topic_prefix: str,
    tmp_path: Path,
    command: str,
    mechanism: str,
    options: tuple[str, ...],
) -> None:
    wrong = "not-the-password-" + topic_prefix
    env = sasl_env(sasl_kafka, mechanism, topic_prefix, password=wrong)
    env["LIQSTREAM_DATA_DIR"] = str(tmp_path)
    env["LIQSTREAM_WEB_PORT"] = env["LIQSTREAM_API_PORT"] = str(free_port())
    result = liqstream(env, command, *options)  # HANG_GUARD_S: a retry loop fails the test
    output = result.stdout + result.stderr
    user, _ = credentials(sasl_kafka, mechanism)
    assert result.returncode == 1, output[-3000:]
    assert (
        f"Error: Kafka at {sasl_kafka.bootstrap} rejected the {mechanism} login of user "
        f"'{user}': check LIQSTREAM_KAFKA_SASL_USERNAME, LIQSTREAM_KAFKA_SASL_PASSWORD"
    ) in result.stderr
    assert "Traceback" not in output
    assert_no_secret(output, [wrong, *secrets_of(sasl_kafka)])


def test_a_mechanism_the_listener_does_not_offer_is_named(
    sasl_kafka: LocalKafka, topic_prefix: str
) -> None:
    env = sasl_env(sasl_kafka, SCRAM, topic_prefix)
    env["LIQSTREAM_KAFKA_SASL_MECHANISM"] = "SCRAM-SHA-256"  # the broker offers 512 and PLAIN
    result = liqstream(env, "topics")
    assert result.returncode == 1
    assert "does not accept SASL mechanism SCRAM-SHA-256" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_an_untrusted_broker_certificate_names_the_ca_setting(
    sasl_kafka: LocalKafka, topic_prefix: str
) -> None:
    env = sasl_env(sasl_kafka, SCRAM, topic_prefix)
    del env["LIQSTREAM_KAFKA_SSL_CAFILE"]  # the system's CAs never signed the session's CA
    result = liqstream(env, "topics")
    assert result.returncode == 1
    assert "TLS certificate of Kafka at" in result.stderr
    assert "set LIQSTREAM_KAFKA_SSL_CAFILE to the CA that signed it" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_tls_against_a_plaintext_listener_names_the_protocol_setting(
    sasl_kafka: LocalKafka, kafka_bootstrap: str, topic_prefix: str
) -> None:
    env = sasl_env(sasl_kafka, SCRAM, topic_prefix)
    env["LIQSTREAM_KAFKA_BOOTSTRAP"] = kafka_bootstrap  # the suite's PLAINTEXT broker
    result = liqstream(env, "collect", "--exchange", "binance-usdm", "--offline")
    assert result.returncode == 1
    assert f"Kafka at {kafka_bootstrap} closed the connection without an answer" in (result.stderr)
    assert "is LIQSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL what this listener speaks?" in (
        result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_plaintext_client_on_the_sasl_ssl_listener_is_refused(
    sasl_kafka: LocalKafka, topic_prefix: str
) -> None:
    """The listener is SASL_SSL only: nothing reaches the data without the login."""
    env = sasl_env(sasl_kafka, SCRAM, topic_prefix)
    for variable in list(env):
        if variable.startswith(("LIQSTREAM_KAFKA_SASL_", "LIQSTREAM_KAFKA_SSL_")):
            del env[variable]
    env["LIQSTREAM_KAFKA_SECURITY_PROTOCOL"] = "PLAINTEXT"
    result = liqstream(env, "collect", "--exchange", "binance-usdm", "--offline")
    assert result.returncode == 1
    assert "is LIQSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT what this listener speaks?" in (
        result.stderr
    )
    assert "Traceback" not in result.stdout + result.stderr


class Process:
    """A liqstream command running in the background, its output kept in a file."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stream", *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


async def test_collector_worker_and_api_over_sasl_ssl(
    sasl_kafka: LocalKafka, topic_prefix: str, tmp_path: Path
) -> None:
    """A fake venue -> `liqstream collect` (SCRAM-SHA-512) -> `liqstream worker` (PLAIN:
    stage one's aiokafka batcher, Faust's stage two, the view and webhook consumers) -> the
    totals topic, /api/totals and a breach POSTed to a webhook. Both log at DEBUG."""
    secrets = secrets_of(sasl_kafka)
    settings = sasl_settings(sasl_kafka, SCRAM, topic_prefix)
    assert liqstream(sasl_env(sasl_kafka, SCRAM, topic_prefix), "topics").returncode == 0

    received: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    hook_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()

    feed = FEEDS["binance-usdm"]
    frames = list(islice(generated_frames(feed, seed=7), 30))
    fake = FakeExchange(feed, frames, interval_s=0.05)
    url = await fake.start()

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: any-order, metric: count, window: 1h, above: 0}\n")
    worker_env = sasl_env(sasl_kafka, PLAIN, topic_prefix)
    web_port = free_port()
    worker_env.update(
        LIQSTREAM_DATA_DIR=str(tmp_path / "worker"),
        LIQSTREAM_WEB_PORT=str(web_port),
        LIQSTREAM_WINDOWS="1h,24h",
        LIQSTREAM_TOTALS_MIN_INTERVAL="250ms",
        LIQSTREAM_RULES_FILE=str(rules),
        LIQSTREAM_WEBHOOK_URLS=f"http://127.0.0.1:{hook_port}/hook",
    )
    collect_env = sasl_env(sasl_kafka, SCRAM, topic_prefix)
    collect_env["LIQSTREAM_DATA_DIR"] = str(tmp_path / "collector")
    worker = Process(worker_env, tmp_path / "worker.log", "worker")
    collector = Process(
        collect_env,
        tmp_path / "collect.log",
        "collect",
        "--exchange",
        feed.name,
        "--offline",
        "--url",
        f"{feed.name}={url}",
    )
    try:
        topics = Topics.with_prefix(topic_prefix)
        events = await consume_until(settings, topics.liquidations, lambda v: len(v) >= 30)
        assert len({e["id"] for e in events}) == len(frames)  # the collector published

        def all_counted(values: list[dict]) -> bool:
            return any(v["count"] == len(frames) and v["window"] == "24h" for v in values)

        totals = await consume_until(settings, topics.totals, all_counted, timeout_s=120)
        assert all_counted(totals), "stage one and Faust's stage two never counted every event"
        breaches = await consume_until(settings, topics.breaches, bool, timeout_s=60)
        assert [b["rule"] for b in breaches] == ["any-order"]

        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{web_port}"
            deadline = time.monotonic() + 60
            body: dict = {}
            while time.monotonic() < deadline:  # the view consumer catches up on its own
                async with session.get(f"{base}/api/totals", params={"window": "24h"}) as reply:
                    body = await reply.json() if reply.status == 200 else {}
                if any(r["count"] == len(frames) for r in body.get("totals", [])):
                    break
                await asyncio.sleep(0.5)
            assert any(r["count"] == len(frames) for r in body["totals"]), body
            async with session.get(f"{base}/readyz") as reply:
                assert reply.status == 200
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert [r["rule"] for r in received] == ["any-order"]  # the webhook consumer's POST
    finally:
        collector_rc, worker_rc = collector.stop(), worker.stop()
        await fake.stop()
        await runner.cleanup()
    outputs = collector.output + worker.output
    assert "Authenticated as liq-scram via SCRAM-SHA-512" in collector.output
    assert "Authenticated as liq-plain via PLAIN" in worker.output
    assert "SaslAuthenticateRequest(credentials not logged)" in worker.output  # DEBUG indeed
    assert collector_rc == 0 and worker_rc == 0, outputs[-3000:]
    assert "Traceback" not in outputs
    assert_no_secret(outputs, secrets)
    assert_no_secret(sasl_kafka.log_path.read_text(errors="replace"), secrets)
