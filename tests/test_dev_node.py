"""`liqstream dev`'s Hyperliquid: a stand-in node writes the demo's hyperliquid orders as fills
files, the `hyperliquid-node` source (the one `liqstream collect-node` runs) follows them, and
the worker counts them: events on `liquidations` as the session says, in the totals, and the
feed in /api/coverage (so on the dashboard). In-process with the shared broker, one websocket
feed beside it to keep the machine's load down."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from stream.collectors.registry import FEEDS
from stream.config import Settings
from stream.demo.session import feed_session
from stream.devrun import run_pipeline
from stream.kafka import Topics
from stream.localkafka import free_port
from stream.node_sources.service import FEED_NAME
from stream.topics import ensure_topics
from tests.collectors.kafka_helpers import consume_until

pytestmark = pytest.mark.kafka

HANG_GUARD_S = 240.0  # a pipeline that shows nothing by then is stuck, not slow
SEQ_PER_RUN = 1_000_000  # stream.demo.replay: a run's sequence numbers start at k * this + 1


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


async def poll(url: str, done: Any) -> Any:
    """The answer once `done(answer)`, asked every second (None if never, within the guard)."""
    answer = None
    async with asyncio.timeout(HANG_GUARD_S):
        while True:
            try:
                answer = await asyncio.to_thread(get, url)
            except OSError:  # not serving yet, or too busy to answer in time
                answer = None
            if answer is not None and done(answer):
                return answer
            await asyncio.sleep(1.0)


async def test_dev_publishes_and_counts_the_node_sources_hyperliquid_liquidations(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    web_port = free_port()
    settings = kafka_settings.model_copy(
        update={
            "data_dir": tmp_path / "dev",
            "web_port": web_port,
            "metrics_port": 0,
            "status_interval_s": 2.0,
        }
    )
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    stop = asyncio.Event()
    run = asyncio.create_task(
        run_pipeline(settings, [FEEDS["binance-coinm"]], stop, speed=2.0), name="dev"
    )
    base = f"http://127.0.0.1:{web_port}"
    try:
        published = await consume_until(
            settings,
            topics.liquidations,
            lambda values: sum(v["exchange"] == "hyperliquid" for v in values) >= 3,
            timeout_s=HANG_GUARD_S,
        )
        hyperliquid = [v for v in published if v["exchange"] == "hyperliquid"]
        assert len(hyperliquid) >= 3, (run.done() and run.exception(), published[:3])
        # each is the session's order of that sequence number, as the stand-in node wrote it
        orders = list(itertools.islice(feed_session(FEED_NAME), 200))
        for event in hyperliquid:
            _, tid, user = event["id"].split(":")
            order = orders[(int(tid) - 1) % SEQ_PER_RUN]
            assert user == f"0x{int(tid):040x}"
            assert (event["symbol"], event["side"]) == (order.symbol, order.side)
            assert event["notional_usd"] == pytest.approx(order.notional_usd, rel=1e-9)
            assert event["quote"] == "USDC"
        totals = await poll(
            f"{base}/api/totals?window=24h&exchange=hyperliquid&coin=all",
            lambda answer: answer["totals"] and answer["totals"][0]["count"] >= len(hyperliquid),
        )
        assert totals is not None, "the worker never counted the hyperliquid events"
        (total,) = totals["totals"]
        assert total["exchange"] == "hyperliquid" and total["total_usd"] > 0
        coverage = await poll(
            f"{base}/api/coverage",
            lambda answer: any(v["feed"] == FEED_NAME for v in answer["venues"]),
        )
        assert coverage is not None, "the node feed never reached /api/coverage"
        (node,) = [v for v in coverage["venues"] if v["feed"] == FEED_NAME]
        assert (node["exchange"], node["wildcard"]) == ("hyperliquid", True)
        assert not run.done()
    finally:
        stop.set()
        await asyncio.wait_for(run, 120)
    assert not list((tmp_path / "dev" / "fake-venues").glob("node-*"))  # cleaned up
