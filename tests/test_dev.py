"""The demo session and `liqstream dev`, as a user runs it on a fresh clone."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stream.collectors.instruments import InstrumentBook
from stream.collectors.registry import FEEDS
from stream.config import load_settings
from stream.demo import RULES, demo_frames
from stream.localkafka import free_port
from stream.rules.model import load_rules
from tests.test_cli import processes_mentioning

NOW_MS = int(time.time() * 1000)


@pytest.mark.parametrize("name", sorted(FEEDS))
def test_demo_frames_parse_in_every_venue_format(name: str) -> None:
    feed = FEEDS[name]
    book = InstrumentBook(feed, url="")
    events = []
    for frame in itertools.islice(demo_frames(feed, started=time.monotonic()), 200):
        parsed = feed.parse(frame, book, NOW_MS)
        assert parsed.rejects == [], parsed.rejects
        events.extend(parsed.events)
    assert len(events) >= 200
    longs = sum(e.notional_usd for e in events if e.side == "long")
    assert longs > 0.7 * sum(e.notional_usd for e in events)  # a long squeeze
    calm = list(itertools.islice(demo_frames(feed, started=time.monotonic() - 3600), 200))
    sides = [e.side for f in calm for e in feed.parse(f, book, NOW_MS).events]
    assert 0.3 < sides.count("long") / len(sides) < 0.7  # then two-sided


def test_demo_is_deterministic_and_its_rules_are_valid() -> None:
    feed = FEEDS["bybit-linear"]
    book = InstrumentBook(feed, url="")
    runs = [
        [
            (e.symbol, e.side, round(e.notional_usd, 6))
            for f in itertools.islice(demo_frames(feed, started=time.monotonic()), 50)
            for e in feed.parse(f, book, NOW_MS).events
        ]
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    settings = load_settings()
    assert len(load_rules(RULES, settings.windows_ms, settings.resolution_ms).rules) == 4


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.mark.kafka
def test_dev_shows_totals_and_a_breach_within_a_minute_and_stops_clean(tmp_path: Path) -> None:
    web_port = free_port()
    env = {
        **os.environ,
        "LIQSTREAM_DATA_DIR": str(tmp_path / "dev"),
        "LIQSTREAM_WEB_PORT": str(web_port),
        "LIQSTREAM_METRICS_PORT": "0",
        "LIQSTREAM_TOPIC_PREFIX": "",
        "LIQSTREAM_LOG_LEVEL": "WARNING",
    }
    env.pop("LIQSTREAM_RULES_FILE", None)
    env.pop("LIQSTREAM_KAFKA_BOOTSTRAP", None)
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "stream", "dev", "--port", str(free_port())],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert any(f"dashboard on http://127.0.0.1:{web_port}/" in line for line in lines), lines
        started = time.monotonic()
        base = f"http://127.0.0.1:{web_port}"
        totals: list = []
        breaches: list = []
        while time.monotonic() - started < 60 and not (totals and breaches):
            time.sleep(1)
            try:
                totals = get(f"{base}/api/totals?window=24h&exchange=all&coin=all")["totals"]
                breaches = get(f"{base}/api/breaches")["breaches"]
            except OSError:
                continue
        assert totals and totals[0]["count"] > 0, "no live totals within a minute"
        assert breaches, "no breach within a minute"
        assert urllib.request.urlopen(f"{base}/", timeout=5).status == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(90)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    deadline = time.monotonic() + 10
    while processes_mentioning(str(tmp_path / "dev")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(tmp_path / "dev")) == []
