"""Shared fixtures: one real Apache Kafka broker per test session, a topic prefix per test."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings

from stream.config import Settings, load_settings

if TYPE_CHECKING:
    from stream.localkafka import LocalKafka

# CI machines run tests in parallel next to other jobs: a property test's example may take
# longer than Hypothesis' 200 ms deadline there without being wrong, so the CI profile has no
# deadline. Nothing else is relaxed: unlike Hypothesis' built-in "ci" profile (replaced here,
# also where Hypothesis loads it by itself) every health check stays on, `too_slow` included (a
# test whose inputs are inherently large suppresses it itself), and examples stay random
# (print_blob says how to reproduce a failure).
hypothesis_settings.register_profile(
    "ci",
    parent=hypothesis_settings.get_profile("default"),
    deadline=None,
    database=None,
    print_blob=True,
)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """LIQSTREAM_KAFKA_BOOTSTRAP when set, else the project's own local broker."""
    external = os.environ.get("LIQSTREAM_KAFKA_BOOTSTRAP")
    if external:
        yield external
        return
    from stream.localkafka import LocalKafka

    broker = LocalKafka(heap="768m")
    bootstrap = broker.start()
    print(f"\nstarted Apache Kafka broker on {bootstrap} (data {broker.data_dir})")
    try:
        yield bootstrap
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def sasl_kafka() -> Iterator[LocalKafka]:
    """A second broker of our own, its one client listener SASL_SSL (a CA made for the
    session; a SCRAM-SHA-512 and a PLAIN user with random passwords): managed Kafka's setup."""
    from stream.localkafka import LocalKafka
    from stream.localkafka.security import SaslSsl

    users = SaslSsl(
        scram_users={"liq-scram": secrets.token_urlsafe(18)},
        plain_users={"liq-plain": secrets.token_urlsafe(18)},
    )
    broker = LocalKafka(heap="512m", sasl=users)
    print(f"\nstarted SASL_SSL Apache Kafka broker on {broker.start()}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix, so tests sharing the broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    return load_settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, topic_partitions=3
    )
