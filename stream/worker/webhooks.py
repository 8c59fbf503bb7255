"""Breach notifications: each breach record POSTed as JSON to the configured URLs.

Every URL has a consumer group of its own on `liquidations.breaches`, so a slow or dead
endpoint never holds up the aggregation nor the other URLs, several workers share the work,
and a restart resumes where that URL's last delivered record was committed (at least once).
Each URL gets its retries with exponential backoff (stamina); a record that still fails is
counted, logged and skipped.
URLs often carry tokens (Slack, Discord hooks), so only their scheme and host are logged, and
the counters name a URL by its position in `LIQSTREAM_WEBHOOK_URLS` (label `webhook`, from 1).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import stamina
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry, Counter

from stream.config import Settings
from stream.kafka import client_options

log = logging.getLogger(__name__)


class RetryableStatus(Exception):
    """5xx or 429: the endpoint may take the record later."""


def redacted(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}/…"


class WebhookSink:
    def __init__(
        self,
        settings: Settings,
        topic: str,
        group_id: str,
        registry: CollectorRegistry,
        *,
        wait_initial_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.topic = topic
        self.group_id = group_id
        self.urls = list(dict.fromkeys(settings.webhook_url_list))  # each URL once
        self.wait_initial_s = wait_initial_s
        self.ready = asyncio.Event()  # partitions assigned: records from now on are posted
        self.delivered = Counter(
            "liqstream_webhook_delivered",
            "Breach records POSTed to a webhook",
            ["webhook"],
            registry=registry,
        )
        self.failures = Counter(
            "liqstream_webhook_failures",
            "Breach records a webhook did not take after every retry",
            ["webhook"],
            registry=registry,
        )
        for position in range(1, len(self.urls) + 1):  # every series exists from the start
            self.delivered.labels(str(position))
            self.failures.labels(str(position))

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop`; then posts in flight are abandoned (not committed, so they
        are posted again after a restart)."""
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_ms / 1000)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            assigned = [asyncio.Event() for _ in self.urls]
            loops = [
                asyncio.create_task(
                    self._deliver(session, url, str(n + 1), ready), name=f"webhook-{n}"
                )
                for n, (url, ready) in enumerate(zip(self.urls, assigned, strict=True))
            ]
            waiting = asyncio.gather(*(ready.wait() for ready in assigned))
            waiting.add_done_callback(self._all_assigned)
            stopped = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait([*loops, stopped], return_when=asyncio.FIRST_COMPLETED)
            finally:
                pending: list[asyncio.Future[Any]] = [*loops, stopped, waiting]
                for future in pending:
                    future.cancel()
                results = await asyncio.gather(*loops, return_exceptions=True)
            for result in results:  # a loop that ended by itself failed: say so
                if isinstance(result, Exception):
                    raise result

    def _all_assigned(self, waiting: asyncio.Future[Any]) -> None:
        if not waiting.cancelled():  # cancelled at a stop: not ready, just done
            self.ready.set()

    def group_of(self, url: str) -> str:
        """The URL's own consumer group: stable across restarts and the order of URLs."""
        return f"{self.group_id}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"

    async def _deliver(
        self, session: aiohttp.ClientSession, url: str, webhook: str, ready: asyncio.Event
    ) -> None:
        """`webhook`: the URL's position in the list (from 1), its counters' label."""
        consumer = AIOKafkaConsumer(
            self.topic,
            **client_options(self.settings),
            group_id=self.group_of(url),
            enable_auto_commit=False,
            auto_offset_reset="latest",  # a new deployment does not replay old alerts
        )
        await consumer.start()
        try:
            while True:
                batch = await consumer.getmany(timeout_ms=500)
                if not ready.is_set() and consumer.assignment():
                    ready.set()
                for records in batch.values():
                    for record in records:
                        await self._post(session, url, webhook, record.value)
                if batch:
                    await consumer.commit()
        finally:
            await consumer.stop()

    async def _post(
        self, session: aiohttp.ClientSession, url: str, webhook: str, body: bytes
    ) -> None:
        try:
            async for attempt in stamina.retry_context(
                on=(aiohttp.ClientError, asyncio.TimeoutError, RetryableStatus),
                attempts=self.settings.webhook_attempts,
                timeout=None,
                wait_initial=self.wait_initial_s,
                wait_max=30.0,
            ):
                with attempt:
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as response:
                        if response.status >= 500 or response.status == 429:
                            raise RetryableStatus(f"HTTP {response.status}")
                        if response.status >= 400:  # the endpoint refuses it: no retry
                            raise ValueError(f"HTTP {response.status}")
            self.delivered.labels(webhook).inc()
        except Exception as exc:
            self.failures.labels(webhook).inc()
            log.warning("webhook %s did not take a breach record: %s", redacted(url), exc)
