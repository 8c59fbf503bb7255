"""The dashboard in a real headless browser (Debian's chromium), served by `liqstream api`
apart from the worker: it loads, shows the numbers the API returns, and changes when new
events arrive, without a reload.

Also `python -m tests.browser.test_dashboard --screenshot docs/dashboard.png` renders the
page with demo-like data for the README."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stream.config import Settings
from stream.kafka import Topics
from stream.topics import ensure_topics
from tests.api.test_api_kafka import Api, send, wait_ready
from tests.api.test_view import coverage_record
from tests.worker.test_breaches_kafka import wait_active
from tests.worker.test_worker_kafka import (
    Totals,
    Worker,
    produce,
    recent_events,
    worker_settings,
)

pytestmark = pytest.mark.kafka

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
HAVE_BROWSER = Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
NOT_REPORTED = "\u2013"  # an en dash: the panel's cell for a feed without a coverage record
RULES = "rules:\n  - {name: market-1h-busy, metric: count, window: 1h, above: 300}\n"


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1440,1000"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def usd(value: float) -> str:
    """The dashboard's own formatting (dashboard.js `usd`)."""
    for size, suffix, digits in ((1e9, "B", 2), (1e6, "M", 2), (1e3, "K", 1)):
        if abs(value) >= size:
            return f"${value / size:.{digits}f}{suffix}"
    return f"${value:.0f}"


async def market_24h(session: aiohttp.ClientSession, worker: Worker) -> dict:
    url = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}/api/totals"
    params = {"window": "24h", "exchange": "all", "coin": "all"}
    async with session.get(url, params=params) as response:
        return (await response.json())["totals"][0]


async def shows_the_api(driver, session: aiohttp.ClientSession, worker: Worker) -> None:
    """The 1h card, every exchange row and every coin row hold the API's numbers."""
    url = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}/api/totals"
    async with session.get(url, params={"window": "24h"}) as response:
        day = (await response.json())["totals"]
    async with session.get(url, params={"window": "1h", "exchange": "all", "coin": "all"}) as r:
        (hour,) = (await r.json())["totals"]
    await text_becomes(driver, "total-1h", usd(hour["total_usd"]))
    for table, part, other in (("exchanges", "exchange", "coin"), ("coins", "coin", "exchange")):
        text = await asyncio.to_thread(lambda t=table: driver.find_element("id", t).text)
        lines = {line.split()[0]: line for line in text.splitlines()[1:]}
        records = [r for r in day if r[part] is not None and r[other] is None]
        for record in sorted(records, key=lambda r: -r["total_usd"])[:10]:
            line = lines[record[part]]
            assert usd(record["total_usd"]) in line and usd(record["long_usd"]) in line, line
            assert f" {record['count']:,} " in f" {line} ", line


async def text_becomes(driver, element_id: str, expected: str, timeout_s: float = 60) -> str:
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(lambda: driver.find_elements("id", element_id))
        text = found[0].text if found else ""  # not rendered yet
        if text == expected:
            return text
        await asyncio.sleep(0.2)
    raise AssertionError(f"#{element_id} shows {text!r}, not {expected!r}")


async def coverage_shown(driver) -> dict[str, dict[str, Any]]:
    """The coverage panel as a user reads it, per feed: its row's cells, whether the
    instruments cell is highlighted, and the rejected topics listed beneath."""

    # read in one go in the page: the panel is redrawn whenever a status record arrives
    script = """
      const shown = {};
      for (const row of document.querySelectorAll("#coverage tbody tr")) {
        if (row.classList.contains("rejected")) {
          const items = [...row.querySelectorAll("li")];
          shown[row.dataset.feed].rejected = items.map((li) => li.innerText);
        } else {
          shown[row.dataset.feed] = {
            cells: [...row.querySelectorAll("td")].map((td) => td.innerText),
            partial: row.querySelector("td.instruments").classList.contains("partial"),
            rejected: [],
          };
        }
      }
      return shown;"""

    def read() -> dict[str, dict[str, Any]]:
        return driver.execute_script(script)

    return await asyncio.to_thread(read)


async def shows_the_coverage(
    driver,
    session: aiohttp.ClientSession,
    worker: Worker,
    reported: dict[str, int],
    timeout_s: float = 60,
) -> dict[str, dict[str, Any]]:
    """Every feed of /api/coverage in the panel: state, "subscribed/listed" (highlighted
    when partial), gaps, and each rejected topic with its reason. Waits for the API to hold
    the coverage records `reported` (feed -> ts) and for the page to catch up with it."""
    url = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}/api/coverage"
    deadline = time.monotonic() + timeout_s
    while True:
        async with session.get(url) as response:
            venues = (await response.json())["venues"]
        held = {v["feed"]: v["coverage_as_of"] for v in venues if v["feed"] in reported}
        expected = {}
        for v in venues:
            counts = (
                NOT_REPORTED
                if v["instruments_listed"] is None
                else f"{v['instruments_subscribed']}/{v['instruments_listed']}"
            )
            rejected = [f"{r['topic']} {r['reason']}" for r in v["rejected"]]
            feed = v["feed"] + (" lower bound" if v["lower_bound"] else "")
            expected[v["feed"]] = {
                "cells": [feed, v["state"], counts, str(len(v["gaps_24h"]))],
                "partial": v["instruments_listed"] is not None
                and v["instruments_subscribed"] < v["instruments_listed"],
                "rejected": rejected,
            }
        shown = await coverage_shown(driver)
        if held == reported and shown == expected:
            return shown
        assert time.monotonic() < deadline, (shown, expected)
        await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def served(
    settings: Settings, tmp_path: Path, env: dict[str, str]
) -> AsyncIterator[tuple[Worker, Totals, aiohttp.ClientSession, Callable[[], Awaitable[Any]]]]:
    """A worker (with `env`) that owns the aggregation and serves no API, `liqstream api`
    (with `env`) serving the dashboard and API apart from it, the totals topic being read, an
    HTTP session, and `open_page()` for a browser on the dashboard; all stopped afterwards.
    Yields the API process where a worker was, so that every URL addresses the API."""
    await ensure_topics(settings)
    worker = Worker(settings, tmp_path, "w")
    worker.env.update({**env, "LIQSTREAM_WORKER_API": "false"})
    api = Api(settings, tmp_path, "api")
    api.env.update(env)
    worker.start()
    api.start()
    drivers: list[Any] = []

    async def open_page() -> Any:
        driver = await asyncio.to_thread(browser)
        drivers.append(driver)
        await asyncio.to_thread(driver.get, f"http://127.0.0.1:{api.env['LIQSTREAM_API_PORT']}/")
        return driver

    try:
        async with Totals(settings) as totals, aiohttp.ClientSession() as session:
            await wait_active(worker)
            await wait_ready(session, api)
            yield api, totals, session, open_page
    finally:
        for driver in drivers:
            await asyncio.to_thread(driver.quit)
        api.stop()
        worker.stop(signal.SIGKILL)


async def run_page(settings: Settings, tmp_path: Path, screenshot: Path | None = None) -> None:
    """Worker + sample events + the page; checks what it shows (and optionally saves it)."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {"LIQSTREAM_RULES_FILE": str(rules), "LIQSTREAM_WINDOWS": settings.windows}
    async with served(settings, tmp_path, env) as (worker, totals, session, open_page):
        await produce(settings, recent_events(500, seed=31))
        status = Topics.with_prefix(settings.topic_prefix).status
        now = int(time.time() * 1000)
        refused = [f"allLiquidation.X{n}USDT" for n in range(12)]  # more than fit unscrolled
        for record in (
            {"exchange": "bybit", "feed": "bybit-linear", "state": "connected", "ts": now},
            coverage_record("bybit-linear", now, 805, 793, *refused),
            {"exchange": "binance", "feed": "binance-usdm", "state": "connected", "ts": now},
            coverage_record("binance-usdm", now, 420, 420, wildcard=True),
        ):
            await send(settings, status, record["exchange"].encode(), record)
        await totals.wait_for_count(500)
        driver = await open_page()
        reported = {"bybit-linear": now, "binance-usdm": now}
        shown = await shows_the_coverage(driver, session, worker, reported)
        bybit = shown["bybit-linear"]
        assert bybit["cells"][1:3] == ["connected", "793/805"] and bybit["partial"]
        assert bybit["rejected"][0] == f"{refused[0]} error:handler not found,topic:{refused[0]}"
        assert len(bybit["rejected"]) == len(refused)  # all, the list scrolls
        binance = shown["binance-usdm"]
        assert binance["cells"][2] == "420/420" and not binance["partial"]
        assert not binance["rejected"]
        assert shown["okx"]["cells"][1:3] == ["unknown", NOT_REPORTED]  # nothing reported yet
        # a retry won the refused topics: the open page follows without a reload
        await send(settings, status, b"bybit", coverage_record("bybit-linear", now + 1, 805, 805))
        reported["bybit-linear"] = now + 1
        shown = await shows_the_coverage(driver, session, worker, reported)
        assert shown["bybit-linear"]["cells"][2] == "805/805"
        assert not shown["bybit-linear"]["partial"] and not shown["bybit-linear"]["rejected"]
        first = await market_24h(session, worker)
        await text_becomes(driver, "total-24h", usd(first["total_usd"]))

        await produce(settings, recent_events(300, seed=32))  # crosses the rule
        await totals.wait_for_count(800)
        second = await market_24h(session, worker)
        assert second["count"] == 800
        await text_becomes(driver, "total-24h", usd(second["total_usd"]))  # no reload
        alerts = await asyncio.to_thread(lambda: driver.find_element("id", "alerts").text)
        deadline = time.monotonic() + 30
        while "market-1h-busy" not in alerts and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            alerts = await asyncio.to_thread(lambda: driver.find_element("id", "alerts").text)
        assert "market-1h-busy" in alerts
        coins = await asyncio.to_thread(lambda: driver.find_element("id", "coins").text)
        assert "BTC" in coins
        await shows_the_api(driver, session, worker)
        if screenshot is not None:
            await asyncio.sleep(1)
            await asyncio.to_thread(driver.save_screenshot, str(screenshot))


@pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"), reason="chromium not installed here"
)
async def test_dashboard_shows_api_numbers_and_follows_live(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    settings = worker_settings(kafka_settings)
    await run_page(settings, tmp_path)


# The screenshot's chart: BTC (a click on its row), 1m bars from a minute before the
# session (the range picker's "from", in the browser's local time).
CHART_SHOT = """
  document.querySelector("#coins tbody tr[data-coin='BTC'] td").click();
  const local = new Date(arguments[0] - new Date().getTimezoneOffset() * 60e3);
  document.getElementById("range-from").value = local.toISOString().slice(0, 16);
  document.getElementById("range-apply").click();
"""


def main() -> None:
    """Render docs/dashboard.png (or --screenshot PATH): `liqstream dev` with its demo session,
    the cascade over (its minutes closed, so the chart has them), as a user sees it, with
    BTC's row clicked and the chart's range from just before the session."""
    import argparse
    import json
    import subprocess
    import sys
    import tempfile
    import urllib.request

    from stream.localkafka import free_port

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--screenshot", type=Path, default=Path("docs/dashboard.png"))
    parser.add_argument("--after", type=float, default=150.0, help="seconds into the demo")
    arguments = parser.parse_args()
    path = arguments.screenshot.resolve()
    web_port = free_port()
    env = {
        **os.environ,
        "LIQSTREAM_DATA_DIR": tempfile.mkdtemp(prefix="liqstream-shot-"),
        "LIQSTREAM_WEB_PORT": str(web_port),
        "LIQSTREAM_METRICS_PORT": "0",
        "LIQSTREAM_LOG_LEVEL": "WARNING",
    }
    dev = subprocess.Popen(
        [sys.executable, "-m", "stream", "dev", "--port", str(free_port())],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    driver = None
    try:
        base = f"http://127.0.0.1:{web_port}"
        started = time.monotonic()
        session_ms = int(time.time() * 1000)
        while time.monotonic() - started < 120:
            time.sleep(1)
            try:
                with urllib.request.urlopen(f"{base}/api/breaches", timeout=5) as response:
                    if json.loads(response.read())["breaches"]:
                        break
            except OSError:
                continue
        time.sleep(max(0.0, arguments.after - (time.monotonic() - started)))
        driver = browser()
        driver.get(base + "/")
        time.sleep(4)
        driver.execute_script(CHART_SHOT, session_ms - 60_000)
        time.sleep(3)
        # the whole page, down to the venue coverage panel
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1440, height + 140)  # the window's frame around the page
        time.sleep(1)
        driver.save_screenshot(str(path))
    finally:
        if driver is not None:
            driver.quit()
        dev.send_signal(signal.SIGINT)
        dev.wait(90)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()


@pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"), reason="chromium not installed here"
)
async def test_dashboard_follows_the_configured_windows(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """Without 24h (or any window the page prefers), the cards, tables and feed use the
    worker's own windows instead of showing nothing."""
    settings = worker_settings(kafka_settings)
    async with served(settings, tmp_path, {"LIQSTREAM_WINDOWS": "15m,2h"}) as (
        worker,
        totals,
        session,
        open_page,
    ):
        await produce(settings, recent_events(200, seed=33))
        deadline = time.monotonic() + 60
        while totals.latest.get("*:*:2h", {}).get("count") != 200:
            assert time.monotonic() < deadline, totals.latest.get("*:*:2h")
            await asyncio.sleep(0.2)
        url = f"http://127.0.0.1:{worker.env['LIQSTREAM_WEB_PORT']}/api/totals"
        params = {"window": "2h", "exchange": "all", "coin": "all"}
        async with session.get(url, params=params) as response:
            (market,) = (await response.json())["totals"]
        driver = await open_page()
        await text_becomes(driver, "total-2h", usd(market["total_usd"]))
        body = await asyncio.to_thread(lambda: driver.find_element("tag name", "body").text)
        page = body.lower()  # headings are upper case by CSS
        assert "top coins · 2h" in page and "largest liquidations · 2h" in page
        assert await asyncio.to_thread(lambda: driver.find_elements("id", "card-24h")) == []
        feed = await asyncio.to_thread(lambda: driver.find_element("id", "feed").text)
        assert " on " in feed  # the largest orders of the 2h window


async def chart_shown(driver) -> dict[str, Any]:
    """The chart as drawn: its scope, interval and range, and every bar's figures."""
    script = """
      const svg = document.getElementById("chart-svg");
      if (!svg) return null;
      return {
        exchange: svg.dataset.exchange || null, coin: svg.dataset.coin || null,
        interval: svg.dataset.interval, from: Number(svg.dataset.from), to: Number(svg.dataset.to),
        bars: [...svg.querySelectorAll("g.bucket")].map((g) => [Number(g.dataset.start),
          Number(g.dataset.long), Number(g.dataset.short), Number(g.dataset.count),
          g.querySelectorAll("rect.long-bar").length, g.querySelectorAll("rect.short-bar").length]),
        line: document.getElementById("chart-count").getAttribute("points").split(" ").length,
      };"""
    return await asyncio.to_thread(driver.execute_script, script)


async def chart_equals_api(
    driver,
    session: aiohttp.ClientSession,
    api: Worker,
    exchange: str | None,
    coin: str | None,
    count: int,
    interval: str = "5m",
    timeout_s: float = 150,
) -> dict[str, Any]:
    """Waits until the chart shows the scope's bars exactly as /api/history gives them for
    the range drawn, `count` orders in all; returns what it shows. (The newest events are in
    the minute not closed yet: their history record comes when it closes.)"""

    def drawn(bucket: dict[str, Any]) -> list[int]:  # a long and a short rectangle, if any
        return [int(bucket["long_usd"] > 0), int(bucket["short_usd"] > 0)]

    url = f"http://127.0.0.1:{api.env['LIQSTREAM_WEB_PORT']}/api/history"
    deadline = time.monotonic() + timeout_s
    while True:
        shown = await chart_shown(driver)
        expected = None
        if shown and (shown["exchange"], shown["coin"]) == (exchange, coin):
            params = {"from": str(shown["from"]), "to": str(shown["to"]), "interval": interval}
            params.update({"exchange": exchange} if exchange else {})
            params.update({"coin": coin} if coin else {})
            async with session.get(url, params=params) as response:
                body = await response.json()
            expected = [
                [b["start"], b["long_usd"], b["short_usd"], b["count"], *drawn(b)]
                for b in body["buckets"]
            ]
            if shown["bars"] == expected and sum(b[3] for b in expected) == count:
                assert shown["interval"] == interval and shown["line"] == len(expected)
                return shown
        assert time.monotonic() < deadline, (shown, expected)
        await asyncio.sleep(0.3)


# The range picker as a user fills it: from and to in the browser's local time, then "show".
PICK_RANGE = """
  const offset = new Date().getTimezoneOffset() * 60e3;
  const local = (ms) => new Date(ms - offset).toISOString().slice(0, 16);
  document.getElementById("range-from").value = local(arguments[0]);
  document.getElementById("range-to").value = local(arguments[1]);
  document.getElementById("range-apply").click();
"""


async def click_row(driver, table: str, attribute: str, value: str) -> None:
    def click() -> None:
        selector = f"#{table} tbody tr[data-{attribute}='{value}'] td"
        driver.find_element("css selector", selector).click()

    await asyncio.to_thread(click)


@pytest.mark.skipif(
    not HAVE_BROWSER and not os.environ.get("CI"), reason="chromium not installed here"
)
async def test_chart_shows_a_clicked_coins_bars_and_follows_live(
    kafka_settings: Settings, tmp_path: Path
) -> None:
    """The chart starts on the market's last 24 h in 5m bars; clicking a coin's row shows that
    coin's bars (long and short stacked, the count line), clicking an exchange's row that
    exchange's, each bar as /api/history gives it; a range picked by hand gives 1m bars, and
    new events of the coin shown change its bars without a reload (by the stream's history
    records: a picked range does not slide); the 24h preset goes back to 5m bars."""
    settings = worker_settings(kafka_settings)
    async with served(settings, tmp_path, {"LIQSTREAM_WINDOWS": settings.windows}) as (
        api,
        totals,
        session,
        open_page,
    ):
        first = recent_events(400, seed=51)
        await produce(settings, first)
        await totals.wait_for_count(400)
        driver = await open_page()
        market = await chart_equals_api(driver, session, api, None, None, 400)
        assert len(market["bars"]) in (288, 289)  # 24 h of 5 minutes (an unfinished one)
        btc = sum(1 for e in first if e.coin == "BTC")
        assert 0 < btc < 400
        await text_becomes(driver, "chart-scope", "MARKET")  # headings upper case by CSS
        await click_row(driver, "coins", "coin", "BTC")
        await text_becomes(driver, "chart-scope", "BTC")
        shown = await chart_equals_api(driver, session, api, None, "BTC", btc)
        assert any(bar[4] and bar[5] for bar in shown["bars"])  # longs and shorts stacked
        selected = await asyncio.to_thread(
            lambda: driver.find_element("css selector", "#coins tr.selected").text
        )
        assert selected.startswith("BTC")

        # a range picked by hand (two hours back to one ahead: 1m bars) no longer slides with
        # the clock, so only the stream's history records can change it from here on
        now_ms = int(time.time() * 1000)
        await asyncio.to_thread(
            driver.execute_script, PICK_RANGE, now_ms - 7_200_000, now_ms + 3_600_000
        )
        await chart_equals_api(driver, session, api, None, "BTC", btc, interval="1m")
        more = [e for e in recent_events(300, seed=52) if e.coin == "BTC"]
        await produce(settings, more)
        await totals.wait_for_count(400 + len(more))
        await chart_equals_api(driver, session, api, None, "BTC", btc + len(more), interval="1m")

        exchange = first[0].exchange
        await click_row(driver, "exchanges", "exchange", exchange)
        await text_becomes(driver, "chart-scope", exchange.upper())
        everything = first + more
        on_exchange = sum(1 for e in everything if e.exchange == exchange)
        await chart_equals_api(driver, session, api, exchange, None, on_exchange, interval="1m")
        await asyncio.to_thread(  # back to a preset: the last 24 h, sliding again
            lambda: driver.find_element("css selector", "#ranges button[data-range='24h']").click()
        )
        await chart_equals_api(driver, session, api, exchange, None, on_exchange)

        # while the view is still reading the history topic /api/history answers 503 with
        # Retry-After: the chart says so and asks again by itself, without a stream record
        await asyncio.to_thread(driver.execute_script, HISTORY_LOADING_ONCE)
        await asyncio.to_thread(
            lambda: driver.find_element("css selector", "#ranges button[data-range='24h']").click()
        )
        await text_becomes(driver, "chart-info", "history is loading…", timeout_s=30)
        async with asyncio.timeout(30):
            while await asyncio.to_thread(driver.execute_script, ASKED_AGAIN_AND_DRAWN) is not True:
                await asyncio.sleep(0.2)
        await chart_equals_api(driver, session, api, exchange, None, on_exchange)


# The next /api/history request answers as a view still loading history does (503, Retry-After).
HISTORY_LOADING_ONCE = """
  const real = window.fetch;
  window.historyAsked = 0;
  window.fetch = (url, ...rest) => {
    if (String(url).startsWith("/api/history") && window.historyAsked++ === 0) {
      const body = JSON.stringify({error: "history is loading", loading: true});
      return Promise.resolve(new Response(body, {status: 503, headers: {"Retry-After": "3"}}));
    }
    return real(url, ...rest);
  };
"""
ASKED_AGAIN_AND_DRAWN = """
  return window.historyAsked >= 2
    && document.getElementById("chart-info").textContent !== "history is loading…";
"""
