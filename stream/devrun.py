"""`liqstream dev`: the whole pipeline on one machine, fed by local fake exchanges.

Local broker -> topics -> one fake exchange per feed (each speaking its venue's protocol and
replaying the demo session, `stream.demo`) and a fake REST server with the instrument listings
of the venues that list instruments paginated or per-instrument (`stream.fake_rest`: Bybit,
OKX, Kraken, dYdX, HTX futures, hundreds of instruments each) -> collectors, which fetch those
listings and subscribe every listed instrument as against the real venues -> Kafka -> worker
(with the demo's rules unless LIQSTREAM_RULES_FILE is set). Hyperliquid comes from a node's
fills files, not a websocket: a stand-in node (`stream.demo.node_fills`) writes the session's
hyperliquid orders into a temporary directory and the `hyperliquid-node` source, the one
`liqstream collect-node` runs, follows it. With `live`, the collectors connect to the real
venues instead (no node: run `liqstream collect-node` beside a real one), and no demo rules
are added.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

from stream.collectors.metrics import CollectorMetrics
from stream.collectors.service import CollectorService
from stream.collectors.venue import Feed
from stream.config import Settings
from stream.console import Console, LiveStatus, format_live, pump_lines
from stream.demo import RULES
from stream.demo.node_fills import NodeFillsWriter
from stream.demo.replay import ReplayClock, replay_frames
from stream.errors import LiqstreamError
from stream.fake_exchange import FakeExchange
from stream.fake_rest import FakeRest, serve_listings
from stream.localkafka import die_with_parent
from stream.node_sources.service import FEED_NAME as NODE_FEED
from stream.node_sources.service import NodeFillsSource

log = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT_S = 30.0
API_TIMEOUT_S = 2.0
PUMP_DRAIN_TIMEOUT_S = 5.0
WORKER_LOG = "worker.log"
DEV_LOG = "dev.log"


def with_demo_rules(settings: Settings, live: bool) -> Settings:
    """The demo's rules file, unless the user has one or the data is live."""
    if settings.rules_file is not None or live:
        return settings
    return settings.model_copy(update={"rules_file": RULES})


async def run_pipeline(
    settings: Settings,
    feeds: Sequence[Feed],
    stop: asyncio.Event,
    *,
    live: bool = False,
    speed: float = 1.0,
    console: Console | None = None,
    node: bool = True,
) -> None:
    """Run fakes (unless live), collectors, the node source on a stand-in node's files (unless
    live or not `node`) and a worker until `stop` is set, then stop them all: worker first,
    then collectors and node source (flushing what they hold), then fakes. Raises
    LiqstreamError if the worker, the collectors or the node source end by themselves. With a
    `console`, each part is named as it starts, the dashboard URL once the worker serves it,
    then a live line; the worker's output then goes to worker.log in the data dir (its
    warnings to the console)."""
    fakes: list[FakeExchange] = []
    urls: dict[str, str] = {}
    instrument_urls: dict[str, str] = {}
    rest = FakeRest()
    collector_settings = settings
    if not live:
        served = serve_listings(rest, [feed.name for feed in feeds])
        await rest.start()
        # every other feed stays on its bundled instruments ("": never fetched)
        instrument_urls = {f.name: rest.url(f.name) if f.name in served else "" for f in feeds}
        # the fake listings must not become the instrument cache of a later --live run
        collector_settings = settings.model_copy(
            update={"data_dir": settings.data_dir / "fake-venues"}
        )
        clock = ReplayClock.starting_now(speed)  # one origin: every venue tells the same story
        for feed in feeds:
            fake = FakeExchange(feed, replay_frames(feed, clock), interval_s=0)
            urls[feed.name] = await fake.start()
            fakes.append(fake)
        if console:
            listings = f"; instrument listings of {', '.join(served)}" if served else ""
            console.part("fake venues", f"{len(fakes)} feeds on 127.0.0.1{listings}")
    metrics = CollectorMetrics()
    service = CollectorService(
        collector_settings, feeds, urls=urls, instrument_urls=instrument_urls, metrics=metrics
    )
    collectors = asyncio.create_task(service.run(), name="collectors")
    if console:
        exchanges = len({feed.exchange for feed in feeds})
        console.part("collectors", f"{len(feeds)} feeds of {exchanges} exchanges")
    parts = {collectors}
    node_dir = writer = source = None
    if node and not live:
        # a fresh directory each run, its read position and remembered ids with it
        collector_settings.data_dir.mkdir(parents=True, exist_ok=True)
        node_dir = tempfile.TemporaryDirectory(prefix="node-", dir=collector_settings.data_dir)
        root = Path(node_dir.name)
        (root / "node_fills" / "hourly").mkdir(parents=True)  # as a node with --write-fills
        writer = asyncio.create_task(
            NodeFillsWriter(root / "node_fills", clock).run(), name="stand-in node"
        )
        node_settings = collector_settings.model_copy(update={"data_dir": root / "state"})
        source = NodeFillsSource(
            node_settings, root / "node_fills", from_beginning=True, metrics=metrics
        )
        parts |= {writer, asyncio.create_task(source.run(), name=NODE_FEED)}
        if console:
            console.part("node source", f"{NODE_FEED} following a stand-in node's {root}")
    feed_count = len(feeds) + (source is not None)
    log_file = settings.data_dir / WORKER_LOG if console else None
    worker = await _start_worker(settings, log_file)
    pump = live_line = None
    if console and log_file:
        assert worker.stdout is not None
        pump = asyncio.create_task(pump_lines(worker.stdout, log_file, console))
        console.part("worker", f"started (pid {worker.pid}), its log in {log_file}")
        live_line = asyncio.create_task(_show_live(settings, metrics, feed_count, console))
    worker_exit = asyncio.create_task(worker.wait(), name="worker")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    ended: set[asyncio.Task] = set()
    try:
        ended, _ = await asyncio.wait(
            {stopped, worker_exit, *parts}, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopped.cancel()
        if live_line:
            live_line.cancel()
            await asyncio.gather(live_line, return_exceptions=True)
        if console:
            console.close()
            node_part = ", node source" if source else ""
            console.line(f"stopping: worker, collectors{node_part}, fake venues")
        await _stop_worker(worker)
        if pump:  # the worker's last lines, up to the end of its output
            await asyncio.wait({pump}, timeout=PUMP_DRAIN_TIMEOUT_S)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
        service.stop.set()
        if source:
            source.stop.set()
        if writer:
            writer.cancel()
        await asyncio.gather(*parts, return_exceptions=True)
        for fake in fakes:
            await fake.stop()
        await rest.stop()
        if node_dir:
            node_dir.cleanup()
    if not stop.is_set():
        for part in sorted(parts & ended, key=lambda task: task.get_name()):
            error = None if part.cancelled() else part.exception()
            if error is not None:
                raise LiqstreamError(f"the {part.get_name()} failed: {error!r}")
            raise LiqstreamError(f"the {part.get_name()} stopped by itself")
        where = f"in {log_file}" if log_file else "above"
        raise LiqstreamError(
            f"the worker exited with code {worker.returncode}; see its log {where}"
        )


async def _start_worker(settings: Settings, log_file: Path | None) -> asyncio.subprocess.Process:
    """The Faust worker owns its event loop and signals, so it runs as a child process: in a
    session of its own, so that Ctrl-C reaches only us and we stop it in order (before the
    broker), and dying with us if we are killed. With `log_file`, its output is piped (to be
    pumped there), in text: the level of each line decides whether the console shows it."""
    piped = asyncio.subprocess.PIPE if log_file else None
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream",
        "worker",
        *(("--log-format", "text") if log_file else ()),
        env={**os.environ, **settings_env(settings)},
        stdout=piped,
        stderr=asyncio.subprocess.STDOUT if log_file else None,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


async def _show_live(
    settings: Settings, metrics: CollectorMetrics, feeds: int, console: Console
) -> None:
    """The dashboard URL once the worker serves it, then the live line every few seconds:
    events/s and feeds connected from our collectors, the 1h total and breaches from the API."""
    base = f"http://{settings.web_host}:{settings.web_port}"
    timeout = aiohttp.ClientTimeout(total=API_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while (await _get(http, f"{base}/healthz")) is None:  # noqa: ASYNC110 (polls a port)
            await asyncio.sleep(0.5)
        console.line(f"dashboard on {base}/")
        console.line("liqstream dev is running; Ctrl-C stops everything.")
        last_events, last_t = _collector_sum(metrics, "events"), time.monotonic()
        while True:
            await asyncio.sleep(console.live_every_s)
            events, now = _collector_sum(metrics, "events"), time.monotonic()
            totals = await _get(http, f"{base}/api/totals?window=1h&exchange=all&coin=all")
            breaches = await _get(http, f"{base}/api/breaches?limit=1000")
            market = (totals or {}).get("totals") or [{}]
            status = LiveStatus(
                events_per_s=(events - last_events) / max(now - last_t, 1e-9),
                total_1h_usd=market[0].get("total_usd"),
                count_1h=market[0].get("count"),
                breaches=None
                if breaches is None
                else sum(b.get("state") == "breach" for b in breaches.get("breaches", [])),
                feeds_connected=int(_collector_sum(metrics, "connected")),
                feeds=feeds,
            )
            console.live(format_live(status))
            last_events, last_t = events, now


async def _get(http: aiohttp.ClientSession, url: str) -> dict | None:
    """The JSON answer, or None while the worker is not serving (or too busy to answer)."""
    try:
        async with http.get(url) as response:
            if url.endswith("/healthz"):
                return {"status": response.status}
            if response.status != 200:
                return None
            answer = await response.json()
            return answer if isinstance(answer, dict) else None
    except (aiohttp.ClientError, TimeoutError):
        return None


def _collector_sum(metrics: CollectorMetrics, name: str) -> float:
    """A collector metric summed over the feeds (events: its _total sample)."""
    metric = getattr(metrics, name)
    return sum(
        sample.value
        for family in metric.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    )


async def _stop_worker(worker: asyncio.subprocess.Process) -> None:
    if worker.returncode is None:
        worker.terminate()
    try:
        await asyncio.wait_for(worker.wait(), WORKER_STOP_TIMEOUT_S)
    except TimeoutError:
        log.warning("worker did not stop within %.0fs; killing it", WORKER_STOP_TIMEOUT_S)
        worker.kill()
        await worker.wait()


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as LIQSTREAM_* variables, for a child process (secrets included)."""
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"LIQSTREAM_{name.upper()}"] = str(value)
    return env
