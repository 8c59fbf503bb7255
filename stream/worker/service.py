"""`liqstream worker`: the batcher (stage one) and the Faust app (stage two) in one process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_kafka
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from stream.config import Settings
from stream.logs import TEXT_FORMAT, JsonFormatter, default_format
from stream.view.server import build_feeder
from stream.worker.agents import WorkerAgents
from stream.worker.app import create_app
from stream.worker.batcher import Batcher
from stream.worker.memory import tune_gc
from stream.worker.web import register_web
from stream.worker.webhooks import WebhookSink

log = logging.getLogger(__name__)


class PlainCounters(Collector):
    """Plain integer counts kept on hot-path objects, exported as counters at scrape time
    (no Prometheus call per event). Each entry: (metric name, object, attribute, meaning)."""

    def __init__(self, counts: tuple[tuple[str, object, str, str], ...]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[CounterMetricFamily]:
        for name, owner, attribute, meaning in self.counts:
            yield CounterMetricFamily(name, meaning, value=getattr(owner, attribute))


class _ReadCommittedThread(faust_kafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(
        self, transport: faust_kafka.Transport
    ) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands this to its fetcher at start(); Faust sets it only in its own
        # exactly-once mode, which the worker does not use (see stream.worker.agents).
        consumer._isolation_level = "read_committed"
        return consumer


class _ReadCommittedConsumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_kafka.Transport):
    """Faust's Kafka transport with its consumer reading `read_committed`: stage one forwards
    batches in transactions, and a batch a fenced batcher's aborted transaction left in the
    log must count nowhere."""

    Consumer = _ReadCommittedConsumer


def build_worker(settings: Settings) -> tuple[faust.App, WorkerAgents]:
    app = create_app(settings)
    # before anything declares a topic: the conductor takes the app's transport then
    app.transport = ReadCommittedTransport(app.conf.broker_consumer, app)
    agents = WorkerAgents(app, settings)
    # without the API here, the history (the bulk of the view) would serve nobody
    feeder = build_feeder(settings, history=settings.worker_api)
    register_web(app, agents, feeder)

    @app.task
    async def run_view() -> None:
        await agents.health.watch("view", feeder.run(asyncio.Event()))

    batcher = Batcher(settings, group_id=f"{app.conf.id}-batcher")
    agents.registry.register(
        PlainCounters(
            (
                ("liqstream_batcher_forwarded", batcher, "forwarded", "Events forwarded"),
                ("liqstream_batcher_duplicates", batcher, "duplicates", "Events already seen"),
                ("liqstream_batcher_rejected", batcher, "rejected", "Invalid, dead-lettered"),
                ("liqstream_batcher_fenced", batcher, "fenced", "Transactions of a fenced owner"),
                ("liqstream_view_unreadable", feeder, "unreadable", "Records the API skipped"),
            )
        )
    )

    @app.task
    async def run_batcher() -> None:
        stop = asyncio.Event()
        try:
            await agents.health.watch("batcher", _batch(batcher, stop))
        finally:
            await batcher.stop()

    if settings.webhook_url_list:
        sink = WebhookSink(
            settings, agents.topics.breaches, f"{app.conf.id}-webhooks", agents.registry
        )

        @app.task
        async def run_webhooks() -> None:
            await agents.health.watch("webhooks", sink.run(asyncio.Event()))

    return app, agents


async def _batch(batcher: Batcher, stop: asyncio.Event) -> None:
    await batcher.start()
    await batcher.run(stop)


def logging_config(level: str, log_format: str) -> dict[str, Any]:
    """The dictConfig Faust's worker applies when it starts (it replaces the root handlers):
    every line, Faust's and aiokafka's included, in the command's `--log-format`."""
    line: dict[str, Any] = (
        {"()": JsonFormatter} if log_format == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": line},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "line",
                "level": level,
            }
        },
        "root": {"level": level, "handlers": ["default"]},
    }


def run_worker(settings: Settings, log_format: str | None = None) -> None:
    """Blocks until SIGINT/SIGTERM; Faust's worker handles the signals and a clean stop.

    `log_format`: json or text (default: text on a terminal, json otherwise)."""
    app, _ = build_worker(settings)
    Path(app.conf.datadir).mkdir(parents=True, exist_ok=True)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level, log_format or default_format()),
        quiet=True,
        redirect_stdouts=False,
    )
    # Faust's terminal spinner sets the root logger to DEBUG whenever the level is WARNING or
    # above, so every debug line of aiokafka and Faust built a record just to spin it.
    worker.spinner = None
    tune_gc()
    worker.execute_from_commandline()
