"""`liqstream collect-node`: a Hyperliquid node's fills output into Kafka.

The lines go through the same `FeedPipeline` and `Publisher` as the websocket collectors: raw
copy (only lines that can hold a liquidation: a node writes every fill of the venue), events
de-duplicated by id, rejects dead-lettered, status records, metrics. The read position is saved
once everything read before it is acknowledged by Kafka (and on a clean stop), so a restarted
source continues where the last one stopped; after a crash the few lines read since the last
save are read again and their events, already remembered by id (kept on disk), are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from pathlib import Path

from prometheus_client import start_http_server

from stream.collectors.dedup import RecentIds
from stream.collectors.instruments import InstrumentBook
from stream.collectors.metrics import CollectorMetrics
from stream.collectors.pipeline import FeedPipeline, deadletter_record, now_ms
from stream.collectors.publisher import Publisher
from stream.collectors.venue import Feed, Instruments, Parsed
from stream.config import Settings
from stream.kafka import Topics
from stream.node_sources import hyperliquid
from stream.node_sources.follow import HourlyFollower

log = logging.getLogger(__name__)

FEED_NAME = "hyperliquid-node"
DEFAULT_FILLS_DIR = Path("~/hl/data/node_fills")
POLL_INTERVAL_S = 0.25  # how often a quiet file is looked at again
# A node writes fills every block (several a second on mainnet): a minute without a line means
# the node stopped or fell behind, and the feed is reported disconnected until lines return.
IDLE_TIMEOUT_S = 60.0


def _parse(text: str, instruments: Instruments, received_ts: int) -> Parsed:
    return hyperliquid.parse_line(text, received_ts)


def node_feed(fills_dir: Path) -> Feed:
    """The feed record the pipeline needs (name, exchange, parser); no websocket behind it."""
    return Feed(
        name=FEED_NAME,
        exchange=hyperliquid.EXCHANGE,
        url=fills_dir.absolute().as_uri(),
        subscribe=lambda symbols: [],
        parse=_parse,
        notes="a Hyperliquid non-validator node's --write-fills output; every liquidation fill",
    )


class NodeFillsSource:
    """Follows one node's fills directory and publishes its liquidations until `stop`."""

    def __init__(
        self,
        settings: Settings,
        fills_dir: Path,
        *,
        from_beginning: bool = False,
        metrics: CollectorMetrics | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.fills_dir = fills_dir.expanduser()
        self.feed = node_feed(self.fills_dir)
        self.metrics = metrics or CollectorMetrics()
        self.publisher = Publisher(settings, self.metrics)
        self.recent_ids = RecentIds(path=settings.data_dir / "recent_ids" / f"{FEED_NAME}.json")
        self.pipeline = FeedPipeline(
            self.feed,
            InstrumentBook(self.feed, url=""),  # contract rules come with each fill
            self.publisher,
            Topics.with_prefix(settings.topic_prefix),
            self.metrics,
            recent_ids=self.recent_ids,
        )
        self.follower = HourlyFollower(
            self.fills_dir,
            settings.data_dir / "positions" / f"{FEED_NAME}.json",
            from_beginning=from_beginning,
        )
        self.poll_interval_s = poll_interval_s
        self.status_interval_s = settings.status_interval_s
        self.stop = asyncio.Event()
        self.lines_read = 0
        self.last_line_ms: int | None = None
        self.idle_timeout_s = idle_timeout_s
        self.flowing = False  # lines arrived within idle_timeout_s
        self._last_line_s = time.monotonic()

    async def _handle(self, line: str) -> None:
        if not hyperliquid.may_hold_liquidation(line):
            return
        try:
            await self.pipeline.on_frame(line, now_ms())
        except Exception as exc:  # per-line supervision: counted, logged, dead-lettered
            self.pipeline.internal_error(exc, line)

    def _report(
        self, opened: list[str], truncated: list[tuple[str, str]], missing: str | None
    ) -> None:
        for relative in opened:
            log.info("following %s", self.fills_dir / relative, extra={"feed": FEED_NAME})
            self.pipeline.status("connected", url=self.feed.url, file=relative)
        if missing is not None:  # pruned before it was read to its end: its rest is lost
            self._lost("file_missing", f"{missing} disappeared before it was read to its end")
        for relative, tail in truncated:
            self._lost("truncated_line", f"unfinished line at the end of {relative}: {tail}")

    def _lost(self, reason: str, detail: str) -> None:
        """What could not be read: logged, counted and dead-lettered, never silent."""
        self.metrics.rejects.labels(FEED_NAME, reason).inc()
        log.warning("%s: %s", reason, detail[:300], extra={"feed": FEED_NAME, "reason": reason})
        self.publisher.submit(
            self.pipeline.topics.deadletter,
            FEED_NAME,
            deadletter_record(FEED_NAME, reason, detail[:10_000], now_ms()),
        )

    def _track_flow(self, got_lines: bool) -> None:
        """`connected` while the node writes; `disconnected` (node_idle) after a silence."""
        now_s = time.monotonic()
        if got_lines:
            self.last_line_ms = now_ms()
            self._last_line_s = now_s
            if not self.flowing:
                self.flowing = True
                self.metrics.connected.labels(FEED_NAME).set(1)
                self.pipeline.status("connected", url=self.feed.url, reason="lines_flowing")
        elif self.flowing and now_s - self._last_line_s > self.idle_timeout_s:
            self.flowing = False
            self.metrics.connected.labels(FEED_NAME).set(0)
            log.warning(
                "no line from the node for %.0fs", self.idle_timeout_s, extra={"feed": FEED_NAME}
            )
            self.pipeline.status(
                "disconnected", reason="node_idle", idle_s=round(now_s - self._last_line_s, 1)
            )

    def _heartbeat(self) -> None:
        """The `heartbeat` status record every websocket feed writes too: a reader tells a
        running source from one whose process is gone by these stopping."""
        self.pipeline.status(
            "heartbeat",
            interval_s=self.status_interval_s,
            connected=self.flowing,
            connections=1,
            connections_up=1 if self.flowing else 0,
            last_frame_ts=self.last_line_ms,
            file=self.follower.position.file,
            instruments_listed=0,
            instruments_subscribed=0,
            rejected=[],
            wildcard=True,  # the node's output holds every market
        )

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.status_interval_s)
            try:
                self._heartbeat()
            except Exception as exc:  # supervision boundary: logged, counted, dead-lettered
                self.pipeline.internal_error(exc, None)

    async def run(self) -> None:
        """Read, publish, save the position; flush and save once more on stop."""
        self.publisher.start()
        self.pipeline.coverage(listed=0, subscribed=0, rejected=[], wildcard=True)
        if not (self.fills_dir / "hourly").is_dir():
            log.warning(
                "%s has no hourly/ directory yet: is the node running with --write-fills?"
                " Waiting for it",
                self.fills_dir,
                extra={"feed": FEED_NAME},
            )
        heartbeats = asyncio.create_task(self._heartbeats(), name=f"{FEED_NAME}-heartbeats")
        try:
            while not self.stop.is_set():
                try:
                    read = await asyncio.to_thread(self.follower.read)
                except OSError as exc:  # unreadable directory or file: counted, retried
                    self.pipeline.internal_error(exc, None)
                    await asyncio.sleep(max(self.poll_interval_s, 1.0))
                    continue
                self._report(read.opened, read.truncated, read.missing)
                for line in read.lines:
                    await self._handle(line)
                self.lines_read += len(read.lines)
                self._track_flow(bool(read.lines))
                if self.publisher.pending == 0:  # all read so far is acknowledged
                    self.follower.save()
                    self.recent_ids.save()
                if not read.lines:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stop.wait(), self.poll_interval_s)
        finally:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            self.metrics.connected.labels(FEED_NAME).set(0)
            self.pipeline.status("disconnected", reason="shutdown")
            await self.publisher.close()
            if self.publisher.pending == 0:
                self.follower.save()
            self.recent_ids.save()
            log.info("node source stopped; %d records delivered", self.publisher.delivered)


async def run_collect_node(settings: Settings, fills_dir: Path, *, from_beginning: bool) -> None:
    """The command's body: signals stop the source cleanly."""
    source = NodeFillsSource(settings, fills_dir, from_beginning=from_beginning)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, source.stop.set)
    if settings.metrics_port:
        start_http_server(
            settings.metrics_port, settings.metrics_host, registry=source.metrics.registry
        )
    await source.run()
