"""The `liqstream` command line (click). Commands stay thin: they parse options and call
the functional core or start a shell (collector, worker, local broker)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from stream.config import Settings, load_settings
from stream.errors import ConfigError, LiqstreamError

if TYPE_CHECKING:
    from stream.engine.rules import RuleSet

log = logging.getLogger("stream")


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _setup_logging(level: str, log_format: str | None = None) -> None:
    from stream.logs import setup_logging

    setup_logging(level, log_format)


def log_format_option(command: Any) -> Any:
    """`--log-format json|text` for a long-running command (default: text on a terminal)."""
    return click.option(
        "--log-format",
        type=click.Choice(["json", "text"]),
        default=None,
        help="Log lines as JSON objects or text (default: text on a terminal, else json).",
    )(command)


def _progress(lines: Any, what: str) -> Any:
    """stdin's lines with a progress line on stderr, on a terminal only (never in a pipe)."""
    if not sys.stderr.isatty():
        return lines
    from tqdm import tqdm

    return tqdm(lines, desc=what, unit=" lines", unit_scale=True, file=sys.stderr, leave=False)


def _check_kafka(settings: Settings, *, require_reachable: bool = False) -> None:
    """Stop at once, saying why, when Kafka refuses our SASL login or TLS handshake (the
    clients would retry that for ever)."""
    from stream.kafka import check_login

    try:
        asyncio.run(check_login(settings, require_reachable=require_reachable))
    except LiqstreamError as exc:
        raise click.ClickException(str(exc)) from None


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
@log_format_option
def kafka(fetch_only: bool, port: int, data_dir: Path | None, log_format: str | None) -> None:
    """Run a local single-node Apache Kafka broker (KRaft) until Ctrl-C."""
    from stream.localkafka import LocalKafka, fetch_jars

    settings = _settings()
    _setup_logging(settings.log_level, log_format)
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
    _check_kafka(settings, require_reachable=True)
    try:
        created = asyncio.run(_create_topics(settings))
    except LiqstreamError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created: {', '.join(created)}" if created else "all topics exist")


def _feeds(names: tuple[str, ...]) -> list:
    from stream.collectors.registry import resolve_feeds

    try:
        return resolve_feeds(names)
    except KeyError as exc:
        raise click.BadParameter(str(exc.args[0]), param_hint="--exchange") from None


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url:
            raise click.BadParameter(f"{value!r} is not FEED=URL", param_hint=option)
        pairs[name] = url
    return pairs


@main.command()
@click.option(
    "--exchange",
    "name",
    required=True,
    help="Exchange id (its first feed, e.g. binance = USD-M) or feed name (binance-coinm).",
)
@click.option("--received-ts", type=int, default=None, help="Receive time to stamp (ms).")
def normalize(name: str, received_ts: int | None) -> None:
    """Frames on stdin (one per line, decompressed) to normalized events on stdout.

    Rejects go to stderr as JSON lines with their reason.
    """
    from stream.commands import normalize_lines

    feed = _feeds((name,))[0]
    # bytes: a line that is not UTF-8 becomes a reject instead of stopping the command
    normalize_lines(feed, sys.stdin.buffer, sys.stdout, sys.stderr, received_ts=received_ts)


@main.command()
@click.option("--exchange", "names", multiple=True, help="Exchange id or feed name; repeatable.")
@click.option("--url", "urls", multiple=True, help="FEED=URL websocket override; repeatable.")
@click.option("--instruments-url", "instrument_urls", multiple=True, help="FEED=URL REST override.")
@click.option("--offline", is_flag=True, help="Never fetch instruments (bundled/cached only).")
@log_format_option
def collect(
    names: tuple[str, ...],
    urls: tuple[str, ...],
    instrument_urls: tuple[str, ...],
    offline: bool,
    log_format: str | None,
) -> None:
    """Run the collectors (all exchanges, or --exchange) into Kafka until Ctrl-C."""
    from stream.collectors.service import run_collect

    settings = _settings()
    _setup_logging(settings.log_level, log_format)
    feeds = _feeds(names)
    _check_kafka(settings)
    asyncio.run(
        run_collect(
            settings,
            feeds,
            _pairs(urls, "--url"),
            _pairs(instrument_urls, "--instruments-url"),
            refresh_instruments=not offline,
        )
    )


@main.command("collect-node")
@click.option(
    "--fills-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("~/hl/data/node_fills"),
    show_default=True,
    help="A Hyperliquid node's --write-fills output (node_fills or node_fills_by_block).",
)
@click.option(
    "--from-beginning",
    is_flag=True,
    help="With no saved position, read every hourly file present (default: new lines only).",
)
@log_format_option
def collect_node(fills_dir: Path, from_beginning: bool, log_format: str | None) -> None:
    """Follow a Hyperliquid node's fills files and publish its liquidations until Ctrl-C."""
    from stream.node_sources.service import run_collect_node

    settings = _settings()
    _setup_logging(settings.log_level, log_format)
    _check_kafka(settings)
    asyncio.run(run_collect_node(settings, fills_dir, from_beginning=from_beginning))


@main.command("normalize-node")
@click.option("--received-ts", type=int, default=None, help="Receive time to stamp (ms).")
def normalize_node(received_ts: int | None) -> None:
    """Lines of a Hyperliquid node's fills file on stdin to liquidation events on stdout.

    Only the liquidated user's side of each liquidation fill becomes an event; rejects go to
    stderr as JSON lines with their reason.
    """
    from stream.commands import normalize_lines
    from stream.node_sources.service import node_feed

    feed = node_feed(Path("~/hl/data/node_fills"))
    normalize_lines(feed, sys.stdin.buffer, sys.stdout, sys.stderr, received_ts=received_ts)


@main.command("fake-exchange")
@click.option("--exchange", "name", required=True, help="Exchange id or feed name.")
@click.option(
    "--frames",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSON lines file: one frame per line (decompressed text). Default: generated frames.",
)
@click.option("--port", type=int, default=0, help="0 picks a free port.")
@click.option("--interval", type=float, default=0.5, show_default=True, help="Seconds per frame.")
@click.option("--drop-after", type=int, multiple=True, help="Drop the connection after N frames.")
@click.option("--stall", type=float, default=0.0, help="Refuse connections this long after a drop.")
@log_format_option
def fake_exchange(
    name: str,
    frames: Path | None,
    port: int,
    interval: float,
    drop_after: tuple[int, ...],
    stall: float,
    log_format: str | None,
) -> None:
    """Serve recorded or generated frames in an exchange's own protocol on localhost (and its
    paginated instrument listing, for the venues `stream.fake_rest` knows)."""
    from stream.fake_exchange import FakeExchange, Script, generated_frames
    from stream.fake_rest import FakeRest, serve_listings

    settings = _settings()
    _setup_logging(settings.log_level, log_format)
    feed = _feeds((name,))[0]
    source = (
        (line.rstrip("\n") for line in frames.open() if line.strip())
        if frames
        else generated_frames(feed)
    )
    fake = FakeExchange(
        feed,
        source,
        port=port,
        interval_s=interval,
        script=Script(drop_after=list(drop_after), stall_s=stall),
    )

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        url = await fake.start()
        click.echo(f"fake {feed.name} serving on {url}", err=False)
        rest = FakeRest()  # its instrument listing too, where stream.fake_rest has one
        if serve_listings(rest, [feed.name]):
            await rest.start()
            click.echo(f"fake {feed.name} instruments on {rest.url(feed.name)}", err=False)
        await stop.wait()
        await fake.stop()
        await rest.stop()

    asyncio.run(serve())


@main.command()
@log_format_option
def worker(log_format: str | None) -> None:
    """Run the Faust worker: rolling totals into liquidations.totals (and the HTTP API).

    --log-format applies to every line, Faust's own included."""
    from stream.worker.environment import drop_faust_variables

    ignored = drop_faust_variables()  # before faust is imported: LIQSTREAM_* alone configures
    from stream.worker.service import run_worker

    settings = _settings()
    _setup_logging(settings.log_level, log_format)
    if ignored:
        log.warning("ignored Faust's variables %s", ", ".join(ignored))
    _check_kafka(settings)
    try:
        run_worker(settings, log_format)
    except ConfigError as exc:  # e.g. an invalid rules file: refuse to start
        raise click.ClickException(str(exc)) from None


@main.command()
@log_format_option
def api(log_format: str | None) -> None:
    """Serve the HTTP API and dashboard from the output topics, apart from the worker, on
    LIQSTREAM_API_HOST:LIQSTREAM_API_PORT (run as many as you like)."""
    from stream.view.server import run_api

    settings = _settings()
    _setup_logging(settings.log_level, log_format)
    _check_kafka(settings)
    run_api(settings)


@main.command()
@click.option(
    "--at", "at_ms", type=int, default=None, help="Evaluation time (ms); default: latest ts."
)
@click.option(
    "--series",
    "interval",
    default=None,
    help="Print /api/history's series at this interval (e.g. 5m) instead of the totals.",
)
@click.option("--from", "from_ms", type=int, default=None, help="Series start (ms).")
@click.option("--to", "to_ms", type=int, default=None, help="Series end (ms, exclusive).")
@click.option("--exchange", default=None, help="Series of one exchange (default: all).")
@click.option("--coin", default=None, help="Series of one coin (default: all).")
def report(
    at_ms: int | None,
    interval: str | None,
    from_ms: int | None,
    to_ms: int | None,
    exchange: str | None,
    coin: str | None,
) -> None:
    """Normalized events on stdin to {"as_of", "totals": [...]} on stdout (the worker's engine).

    With --series: the history series /api/history answers, for the market (or --exchange,
    --coin) from --from to --to (default: the events' span). Invalid, too late and future
    events go to stderr with their reason.
    """
    from stream.commands import report_lines, series_lines

    settings = _settings()
    if interval is None:
        report_lines(_progress(sys.stdin.buffer, "report"), sys.stdout, sys.stderr, settings, at_ms)
        return
    from stream.view.state import BadRequest

    given = {"interval": interval, "from": from_ms, "to": to_ms, "exchange": exchange, "coin": coin}
    params = {name: str(value) for name, value in given.items() if value is not None}
    try:
        series_lines(
            _progress(sys.stdin.buffer, "series"), sys.stdout, sys.stderr, settings, params
        )
    except BadRequest as exc:
        raise click.UsageError(str(exc)) from None


def _rules(settings: Settings, path: Path) -> RuleSet:
    from stream.rules import load_rules

    try:
        return load_rules(path, settings.windows_ms, settings.resolution_ms)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option(
    "--rules",
    "rules_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Rules YAML file (docs/rules.md).",
)
def detect(rules_path: Path) -> None:
    """Normalized events on stdin, in time order, to breach and recovery records on stdout.

    The worker's own evaluator, on event time; invalid and too late events go to stderr.
    """
    from stream.commands import detect_lines

    settings = _settings()
    rule_set = _rules(settings, rules_path)
    detect_lines(_progress(sys.stdin.buffer, "detect"), sys.stdout, sys.stderr, settings, rule_set)


@main.group()
def rules() -> None:
    """Threshold rules files."""


@rules.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
def rules_check(path: Path) -> None:
    """Validate a rules file: every mistake is listed with its line, rule and field."""
    rule_set = _rules(_settings(), path)
    click.echo(f"{path}: {len(rule_set.rules)} rules OK")
    for rule in rule_set.rules:
        scope = ", ".join(
            f"{name}={value}"
            for name, value in (("exchange", rule.exchange), ("coin", rule.coin))
            if value is not None
        )
        window = f" over {rule.window}" if rule.window else ""
        click.echo(
            f"  {rule.name}: {rule.metric}{window} {rule.direction} {rule.threshold:g}"
            f" [{scope or 'all'}]"
        )


@main.command()
@click.option("--port", type=int, default=9092, show_default=True, help="Local broker port.")
@click.option("--live", is_flag=True, help="Connect to the real exchanges instead of the demo.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=100.0),
    default=1.0,
    show_default=True,
    help="Demo replay speed (2 plays the cascade in half the time).",
)
@log_format_option
def dev(port: int, live: bool, speed: float, log_format: str | None) -> None:
    """Everything on one machine: local Kafka, fake exchanges replaying the bundled demo
    session (or --live), collectors, worker and dashboard. Ctrl-C stops everything.

    The console names each part as it starts, then the dashboard URL and a live line; every
    log line goes to files in the data dir (warnings and errors to the console too)."""
    from stream.console import Console, ConsoleHandler
    from stream.devrun import DEV_LOG, with_demo_rules
    from stream.localkafka import LocalKafka
    from stream.logs import setup_logging

    settings = with_demo_rules(_settings(), live)
    console = Console()
    setup_logging(
        settings.log_level,
        log_format or ("text" if console.tty else "json"),
        log_file=settings.data_dir / DEV_LOG,
        console=ConsoleHandler(console),
    )
    source = "the real exchanges" if live else "the bundled demo session, a liquidation cascade"
    console.line(f"liqstream dev: {source}")
    console.part("logs", f"{settings.data_dir / DEV_LOG} (warnings and errors shown here too)")
    console.part("rules", str(settings.rules_file or "none (LIQSTREAM_RULES_FILE)"))
    broker = LocalKafka(settings.data_dir / "kafka", port=port)
    try:
        bootstrap = broker.start()
        console.part("broker", f"Kafka listening on {bootstrap}")
        settings = settings.model_copy(update={"kafka_bootstrap": bootstrap})
        asyncio.run(_dev(settings, live, speed, console))
    except LiqstreamError as exc:
        console.close()
        raise click.ClickException(str(exc)) from None
    finally:
        broker.stop()
        console.line("stopped")


async def _dev(settings: Settings, live: bool, speed: float, console: Any) -> None:
    from stream.collectors.registry import resolve_feeds
    from stream.devrun import run_pipeline

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    created = await _create_topics(settings)
    console.part("topics", f"created {len(created)}" if created else "all exist")
    await run_pipeline(settings, resolve_feeds(()), stop, live=live, speed=speed, console=console)


if __name__ == "__main__":
    main()
