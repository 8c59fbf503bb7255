"""Shared fixtures: one real Apache Kafka broker per test session, a topic prefix per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from stream.config import Settings, load_settings


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


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix, so tests sharing the broker never see each other's records."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def kafka_settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    return load_settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, topic_partitions=3
    )
