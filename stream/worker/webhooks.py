"""Breach notifications: each breach record POSTed as JSON to the configured URLs.

A consumer group of its own reads `liquidations.breaches`, so a slow or dead endpoint never
holds up the aggregation, several workers share the work, and a restart resumes where the
last delivered record was committed (at least once). Each URL gets its retries with
exponential backoff (stamina); a record that still fails is counted, logged and skipped.
URLs often carry tokens (Slack, Discord hooks), so only their scheme and host are logged.
"""

from __future__ import annotations

import asyncio
import logging
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
        self.urls = settings.webhook_url_list
        self.wait_initial_s = wait_initial_s
        self.ready = asyncio.Event()  # partitions assigned: records from now on are posted
        self.delivered = Counter(
            "liqstream_webhook_delivered", "Breach records POSTed to a webhook", registry=registry
        )
        self.failures = Counter(
            "liqstream_webhook_failures",
            "Breach records a webhook did not take after every retry",
            registry=registry,
        )

    async def run(self, stop: asyncio.Event) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            **client_options(self.settings),
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="latest",  # a new deployment does not replay old alerts
        )
        timeout = aiohttp.ClientTimeout(total=self.settings.webhook_timeout_ms / 1000)
        await consumer.start()
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                while not stop.is_set():
                    batch = await consumer.getmany(timeout_ms=500)
                    if not self.ready.is_set() and consumer.assignment():
                        self.ready.set()
                    for records in batch.values():
                        for record in records:
                            await asyncio.gather(
                                *(self._post(session, url, record.value) for url in self.urls)
                            )
                    if batch:
                        await consumer.commit()
        finally:
            await consumer.stop()

    async def _post(self, session: aiohttp.ClientSession, url: str, body: bytes) -> None:
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
            self.delivered.inc()
        except Exception as exc:
            self.failures.inc()
            log.warning("webhook %s did not take a breach record: %s", redacted(url), exc)
