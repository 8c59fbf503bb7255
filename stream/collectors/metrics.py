"""Prometheus metrics of the collectors, in a registry per service (tests run several)."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector


class _EventAge(Collector):
    """Seconds since each feed's last event, computed at scrape time."""

    def __init__(self) -> None:
        self.last_event_s: dict[str, float] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "liqstream_collector_last_event_age_seconds",
            "Seconds since the feed's last normalized event",
            labels=["feed"],
        )
        now = time.time()
        for feed, seen_s in self.last_event_s.items():
            family.add_metric([feed], now - seen_s)
        yield family


class CollectorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames = Counter("liqstream_collector_frames", "Frames received", ["feed"], registry=r)
        self.events = Counter(
            "liqstream_collector_events", "Normalized events published", ["feed"], registry=r
        )
        self.duplicates = Counter(
            "liqstream_collector_duplicates",
            "Events dropped as already seen (by id)",
            ["feed"],
            registry=r,
        )
        self.rejects = Counter(
            "liqstream_collector_rejects",
            "Rejected frames or items",
            ["feed", "reason"],
            registry=r,
        )
        self.reconnects = Counter(
            "liqstream_collector_reconnects", "Connections lost or renewed", ["feed"], registry=r
        )
        self.connected = Gauge(
            "liqstream_collector_connected",
            "1 while every connection of the feed is open and has delivered frames",
            ["feed"],
            registry=r,
        )
        self.subscription_rejects = Counter(
            "liqstream_subscription_rejects",
            "Topics the venue refused to subscribe (each refusal, retries included)",
            ["feed"],
            registry=r,
        )
        self.instruments_listed = Gauge(
            "liqstream_collector_instruments_listed",
            "Instruments the venue lists for the feed",
            ["feed"],
            registry=r,
        )
        self.instruments_subscribed = Gauge(
            "liqstream_collector_instruments_subscribed",
            "Instruments whose subscription the venue acknowledged",
            ["feed"],
            registry=r,
        )
        self.internal_errors = Counter(
            "liqstream_collector_internal_errors",
            "Unexpected exceptions in a feed (frame dead-lettered as internal_error; the feed"
            " goes on or restarts)",
            ["feed"],
            registry=r,
        )
        self.buffered = Gauge(
            "liqstream_publisher_buffered", "Records waiting for Kafka", registry=r
        )
        self.overflow = Counter(
            "liqstream_publisher_overflow",
            "Records dropped because the buffer was full",
            ["topic"],
            registry=r,
        )
        self.undeliverable = Counter(
            "liqstream_publisher_undeliverable",
            "Records Kafka refuses for good (e.g. too large), logged and dropped",
            ["topic"],
            registry=r,
        )
        self.publish_errors = Counter(
            "liqstream_publisher_errors", "Failed attempts to deliver a batch to Kafka", registry=r
        )
        self.event_age = _EventAge()
        r.register(self.event_age)

    def saw_event(self, feed: str) -> None:
        self.event_age.last_event_s[feed] = time.time()
