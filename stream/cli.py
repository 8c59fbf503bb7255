"""The `liqstream` command line (click). Commands stay thin: they parse options and call
the functional core or start a shell (collector, worker, local broker)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

import click

from stream.config import Settings, load_settings
from stream.errors import ConfigError, LiqstreamError

log = logging.getLogger("stream")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


def shutdown_requested() -> threading.Event:
    """An event set by SIGINT or SIGTERM; install it before starting anything to stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """liqstream: live crypto liquidation totals and alerts from your own Kafka."""


@main.command()
@click.option("--fetch-only", is_flag=True, help="Only download the broker jars into the cache.")
@click.option("--port", type=int, default=9092, show_default=True, help="0 picks a free port.")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep broker data here (default: a temporary directory removed on exit).",
)
def kafka(fetch_only: bool, port: int, data_dir: Path | None) -> None:
    """Run a local single-node Apache Kafka broker (KRaft) until Ctrl-C."""
    from stream.localkafka import LocalKafka, fetch_jars

    settings = _settings()
    _setup_logging(settings.log_level)
    try:
        if fetch_only:
            click.echo(f"Kafka jars in {fetch_jars()}")
            return
        stop = shutdown_requested()
        broker = LocalKafka(data_dir, port=port)
        bootstrap = broker.start()
        try:
            asyncio.run(_create_topics(settings.model_copy(update={"kafka_bootstrap": bootstrap})))
            click.echo(f"Kafka listening on {bootstrap} (Ctrl-C stops it)")
            stop.wait()
        finally:
            broker.stop()
    except LiqstreamError as exc:
        raise click.ClickException(str(exc)) from None


async def _create_topics(settings: Settings) -> list[str]:
    from stream.topics import ensure_topics

    return await ensure_topics(settings)


@main.command()
def topics() -> None:
    """Create the liqstream topics on LIQSTREAM_KAFKA_BOOTSTRAP if they are missing."""
    settings = _settings()
    _setup_logging(settings.log_level)
    created = asyncio.run(_create_topics(settings))
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


@main.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Local broker port.")
def dev(port: int) -> None:
    """Everything on one machine: local Kafka broker, topics, and the services that exist."""
    from stream.localkafka import LocalKafka

    settings = _settings()
    _setup_logging(settings.log_level)
    stop = shutdown_requested()
    broker = LocalKafka(settings.data_dir / "kafka", port=port)
    try:
        bootstrap = broker.start()
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        asyncio.run(_create_topics(settings))
        click.echo(f"Kafka listening on {bootstrap}")
        click.echo("liqstream dev is running; Ctrl-C stops everything.")
        stop.wait()
    except LiqstreamError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        broker.stop()
        click.echo("stopped")


if __name__ == "__main__":
    main()
