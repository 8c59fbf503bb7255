"""From a received frame to Kafka records: raw copy, normalized events, dead letters.

The venue parser is pure; this module adds what needs state: de-duplication by id, one
instrument refresh when a symbol is unknown, metrics, and the record shapes of docs/events.md.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import orjson

from stream.collectors.dedup import RecentIds
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.publisher import Publisher
from stream.collectors.venue import UNKNOWN_SYMBOL, Feed, Flushes, Parsed
from stream.errors import Rejected
from stream.kafka import Topics
from stream.schema import LiquidationEvent

log = logging.getLogger(__name__)

MAX_RECORD_CHARS = 256 * 1024  # Kafka's default limit is 1 MiB per record; stay well below


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def deadletter_record(source: str, reason: str, payload: str, ts_ms: int) -> bytes:
    return orjson.dumps({"source": source, "reason": reason, "payload": payload, "ts": ts_ms})


def status_record(feed: Feed, state: str, ts_ms: int, **details: Any) -> bytes:
    return orjson.dumps(
        {"exchange": feed.exchange, "feed": feed.name, "state": state, "ts": ts_ms, **details}
    )


class FeedPipeline:
    """Everything that happens to one feed's frames after the websocket hands them over."""

    def __init__(
        self,
        feed: Feed,
        book: InstrumentBook,
        publisher: Publisher,
        topics: Topics,
        metrics: CollectorMetrics,
        *,
        recent_ids: RecentIds | None = None,
    ) -> None:
        self.feed = feed
        self.book = book
        self.publisher = publisher
        self.topics = topics
        self.metrics = metrics
        self.recent_ids = recent_ids if recent_ids is not None else RecentIds()
        # one stateful parser per pipeline (Bitfinex pairing, BitMEX's XBT/USD rate)
        self.parse = feed.stateful_parse() if feed.stateful_parse else feed.parse

    async def on_frame(self, text: str, received_ts: int) -> list[LiquidationEvent]:
        """Publish the raw frame, its new events and its rejects; return the new events."""
        feed = self.feed
        self.metrics.frames.labels(feed.name).inc()
        raw: dict[str, Any] = {
            "exchange": feed.exchange,
            "feed": feed.name,
            "received_ts": received_ts,
            "frame": text,
        }
        if len(text) > MAX_RECORD_CHARS:  # the parser rejects it; keep the record deliverable
            raw.update(frame=text[:MAX_RECORD_CHARS], truncated_from=len(text))
        self.publisher.submit(self.topics.raw, feed.exchange, orjson.dumps(raw))
        parsed = self.parse(text, self.book, received_ts)
        if any(r.reason == UNKNOWN_SYMBOL for r in parsed.rejects) and await self.book.refresh():
            parsed = self.parse(text, self.book, received_ts)
        return self.publish_parsed(parsed)

    def flush(self) -> list[LiquidationEvent]:
        """Settle what the stateful parser holds (the collector is stopping): held rows
        become events or dead letters instead of vanishing with the process."""
        if not isinstance(self.parse, Flushes):
            return []
        return self.publish_parsed(self.parse.flush(self.book, now_ms()))

    def publish_parsed(self, parsed: Parsed) -> list[LiquidationEvent]:
        feed = self.feed
        fresh = []
        for event in parsed.events:
            if not self.recent_ids.add(event.id):
                self.metrics.duplicates.labels(feed.name).inc()
                continue
            fresh.append(event)
            self.publisher.submit(
                self.topics.liquidations, f"{event.exchange}:{event.symbol}", event.to_json()
            )
        if fresh:
            self.metrics.events.labels(feed.name).inc(len(fresh))
            self.metrics.saw_event(feed.name)
        for rejected in parsed.rejects:
            self.dead_letter(rejected)
        return fresh

    def dead_letter(self, rejected: Rejected) -> None:
        self.metrics.rejects.labels(self.feed.name, rejected.reason).inc()
        log.warning(
            "rejected %s from %s: %s",
            rejected.reason,
            self.feed.name,
            rejected.detail[:500],
            extra={"feed": self.feed.name, "reason": rejected.reason},
        )
        self.publisher.submit(
            self.topics.deadletter,
            self.feed.name,
            deadletter_record(
                self.feed.name, rejected.reason, rejected.detail[:MAX_RECORD_CHARS], now_ms()
            ),
        )

    def internal_error(self, exc: BaseException, frame: str | bytes | None) -> None:
        """An unexpected exception while handling `frame`: logged with its traceback, counted,
        and the frame dead-lettered as `internal_error` so nothing vanishes."""
        self.metrics.internal_errors.labels(self.feed.name).inc()
        log.error(
            "internal error in %s: %r",
            self.feed.name,
            exc,
            exc_info=exc,
            extra={"feed": self.feed.name},
        )
        text = frame if isinstance(frame, str) else repr(frame)[:MAX_RECORD_CHARS]
        trace = "".join(traceback.format_exception_only(exc)).strip()
        self.publisher.submit(
            self.topics.deadletter,
            self.feed.name,
            deadletter_record(
                self.feed.name,
                "internal_error",
                orjson.dumps({"error": trace, "frame": text[:MAX_RECORD_CHARS]}).decode(),
                now_ms(),
            ),
        )

    def coverage(
        self,
        *,
        listed: int,
        subscribed: int,
        rejected: list[dict[str, str]],
        wildcard: bool = False,
    ) -> None:
        """The `coverage` status record: instruments listed, subscribed, topics refused."""
        self.metrics.instruments_listed.labels(self.feed.name).set(listed)
        self.metrics.instruments_subscribed.labels(self.feed.name).set(subscribed)
        extra: dict[str, Any] = {"wildcard": True} if wildcard else {}
        self.status(
            "coverage",
            instruments_listed=listed,
            instruments_subscribed=subscribed,
            rejected=rejected,
            **extra,
        )

    def status(self, state: str, **details: Any) -> None:
        self.publisher.submit(
            self.topics.status,
            self.feed.exchange,
            status_record(self.feed, state, now_ms(), **details),
        )
