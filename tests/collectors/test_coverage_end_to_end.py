"""`liqstream collect` against fakes that enforce the venues' rules, into a real Kafka.

Bybit: a REST listing of more than 1,000 linear symbols in pages of at most 1,000 with
`nextPageCursor`, a websocket that refuses a connection's args past 21,000 characters and a
whole batch for one topic it has no handler for. The collector must end up live on every listed
symbol, pick up a symbol listed later within one refresh interval, and lose only the refused
topic, which shows in the coverage record and in `liqstream_subscription_rejects_total`.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from stream.collectors.bybit import FEEDS as BYBIT
from stream.collectors.venue import Instrument
from stream.config import Settings
from stream.fake_exchange import FakeExchange
from stream.fake_rest import FakeRest, bybit_row, bybit_rows
from stream.kafka import Topics
from stream.simulators.bybit import render
from stream.topics import ensure_topics
from tests.collectors.kafka_helpers import consume_until

pytestmark = pytest.mark.kafka

LINEAR = BYBIT[0]
LISTED = 1_105
REFUSED = "allLiquidation.NOHANDLERUSDT"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def one_liquidation(topic: str) -> str:
    """What the fake sends once a topic is subscribed: one 0.5-coin long liquidation at 2 USD."""
    symbol = topic.removeprefix("allLiquidation.")
    coin = symbol.removesuffix("USDT")
    instrument = Instrument(symbol, coin, "USDT", "linear")
    return render(instrument, "long", 2.0, 0.5, 1_762_290_000_000, abs(hash(symbol)) % 10**9)


def symbols_of(events: list[dict]) -> set[str]:
    return {event["symbol"] for event in events}


async def test_bybit_collect_covers_every_listed_symbol(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = kafka_settings.model_copy(update={"data_dir": tmp_path})
    await ensure_topics(settings)
    topics = Topics.with_prefix(settings.topic_prefix)
    rest = FakeRest()
    rest.bybit["linear"] = [
        *bybit_rows(LISTED, "linear"),
        bybit_row("NOHANDLERUSDT", "NOHANDLER", "USDT", "linear"),
    ]
    listed = {row["symbol"] for row in rest.bybit["linear"]}
    await rest.start()
    fake = FakeExchange(LINEAR, [], unknown_topics={REFUSED}, frame_on_subscribe=one_liquidation)
    ws_url = await fake.start()
    metrics_port = free_port()
    env = {
        **os.environ,
        "LIQSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LIQSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LIQSTREAM_DATA_DIR": str(tmp_path),
        "LIQSTREAM_METRICS_PORT": str(metrics_port),
        "LIQSTREAM_INSTRUMENTS_REFRESH_S": "2",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream",
        "collect",
        "--exchange",
        "bybit-linear",
        "--url",
        f"bybit-linear={ws_url}",
        "--instruments-url",
        f"bybit-linear={rest.url('bybit-linear')}",
        env=env,
    )
    try:
        wanted = listed - {"NOHANDLERUSDT"}
        events = await consume_until(
            settings,
            topics.liquidations,
            lambda v: wanted <= symbols_of(v),
            timeout_s=30,  # the bound: live on every listed symbol within 30 s
        )
        missing = wanted - symbols_of(events)
        assert not missing, f"{len(missing)} of {len(wanted)} symbols not live"
        pages = [r for r in rest.requests if r.startswith("/v5/market/instruments-info")]
        assert any("cursor=" in r for r in pages)  # the second page was asked for
        assert fake.connections >= 2  # 1,106 topics do not fit 21,000 characters

        # A symbol listed later is subscribed within one refresh interval.
        rest.bybit["linear"].append(bybit_row("LATEUSDT", "LATE", "USDT", "linear"))
        events = await consume_until(
            settings, topics.liquidations, lambda v: "LATEUSDT" in symbols_of(v), timeout_s=30
        )
        assert "LATEUSDT" in symbols_of(events)

        def settled(records: list[dict]) -> bool:
            coverage = [r for r in records if r["state"] == "coverage"]
            return bool(coverage) and coverage[-1]["instruments_subscribed"] == LISTED + 1

        statuses = await consume_until(settings, topics.status, settled, timeout_s=30)
        coverage = [s for s in statuses if s["state"] == "coverage"][-1]
        assert coverage["exchange"] == "bybit" and coverage["feed"] == "bybit-linear"
        assert coverage["instruments_listed"] == LISTED + 2
        assert coverage["instruments_subscribed"] == LISTED + 1
        assert coverage["rejected"] == [
            {"topic": REFUSED, "reason": f"error:handler not found,topic:{REFUSED}"}
        ]
        assert "wildcard" not in coverage
        assert REFUSED not in fake.subscribed_topics()

        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response,
        ):
            exposition = await response.text()
        rejects = [
            line
            for line in exposition.splitlines()
            if line.startswith('liqstream_subscription_rejects_total{feed="bybit-linear"}')
        ]
        assert rejects and float(rejects[0].split()[-1]) >= 2  # in its batch, then alone
    finally:
        process.terminate()
        await process.wait()
        await fake.stop()
        await rest.stop()
