"""Create the topics of docs/events.md ("Topics") if they are missing, idempotently."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from stream.config import Settings
from stream.errors import LiqstreamError
from stream.kafka import Topics, client_options

log = logging.getLogger(__name__)


class KafkaTopicError(LiqstreamError):
    """The cluster refused to create a topic (permissions, replication above broker count)."""


def topic_configs(settings: Settings, topics: Topics) -> dict[str, dict[str, str]]:
    """Per-topic settings: totals compacted (latest value per key), raw time-retained."""
    configs: dict[str, dict[str, str]] = {name: {} for name in topics.all()}
    configs[topics.totals] = {
        "cleanup.policy": "compact",
        "min.cleanable.dirty.ratio": "0.1",
        "segment.ms": "3600000",
    }
    configs[topics.raw] = {"retention.ms": str(settings.raw_retention_ms)}
    # One key per scope and bucket, never written again once the bucket is past late events:
    # compaction keeps a bucket's last record, time retention drops whole days of them (no
    # tombstones to send, so no 30 days of keys for the worker to remember).
    configs[topics.history] = {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(settings.history_retention_ms),
        "segment.ms": "86400000",
        "min.cleanable.dirty.ratio": "0.1",
    }
    # Read back on (re)assignment to rebuild de-duplication, so keep at least the longest
    # window (plus margin) and no more than needed.
    longest_ms = max(settings.windows_ms.values())
    configs[topics.batches] = {"retention.ms": str(longest_ms + 3_600_000)}
    return configs


async def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created (empty when all existed)."""
    topics = Topics.with_prefix(settings.topic_prefix)
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(
                name=name,
                # The worker's aggregation stage is global (every scope, including "all"), so
                # its input has one partition; see docs/benchmarks.md.
                num_partitions=1 if name == topics.batches else settings.topic_partitions,
                replication_factor=settings.topic_replication,
                topic_configs=config,
            )
            for name, config in topic_configs(settings, topics).items()
            if name not in existing
        ]
        created = []
        if wanted:
            response = await admin.create_topics(wanted, timeout_ms=30_000)
            for name, code, *message in response.topic_errors:
                error = for_code(code)
                if code == 0:
                    created.append(name)
                elif error is not TopicAlreadyExistsError:  # lost a race: fine
                    raise KafkaTopicError(
                        f"creating topic {name} failed: {error.__name__} {message}"
                    )
        if created:
            log.info("created topics %s", ", ".join(created))
        return created
    finally:
        await admin.close()
