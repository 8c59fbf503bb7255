"""The Faust topics the worker's agent and timers use, declared in one place.

The names come from stream.kafka.Topics (the prefix applies); all values are raw bytes."""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TopicT

from stream.kafka import Topics


@dataclass(frozen=True)
class WorkerTopics:
    names: Topics
    batches: TopicT  # the agent's input: one partition, the unit of exactly-once
    totals: TopicT
    deadletter: TopicT


def declare_topics(app: faust.App, topic_prefix: str) -> WorkerTopics:
    names = Topics.with_prefix(topic_prefix)
    return WorkerTopics(
        names=names,
        batches=app.topic(
            names.batches, key_serializer="raw", value_serializer="raw", partitions=1
        ),
        totals=app.topic(names.totals, key_serializer="raw", value_serializer="raw"),
        deadletter=app.topic(names.deadletter, key_serializer="raw", value_serializer="raw"),
    )
