"""`liqstream dev`: the whole pipeline on one machine, fed by local fake exchanges.

Local broker -> topics -> one fake exchange per feed (each speaking its venue's protocol and
replaying the demo session's cascade, stream.demo) -> collectors -> Kafka -> worker (with the
demo's rules unless LIQSTREAM_RULES_FILE is set). With `live`, the collectors connect to the
real venues instead.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from stream.collectors.service import CollectorService
from stream.collectors.venue import Feed
from stream.config import Settings
from stream.demo import RULES, demo_frames
from stream.fake_exchange import FakeExchange

log = logging.getLogger(__name__)


async def run_pipeline(
    settings: Settings,
    feeds: Sequence[Feed],
    stop: asyncio.Event,
    *,
    live: bool = False,
    frame_interval_s: float = 0.5,
) -> None:
    """Run fakes (unless live) and collectors until `stop` is set, then stop them cleanly."""
    fakes: list[FakeExchange] = []
    urls: dict[str, str] = {}
    if not live:
        for feed in feeds:
            fake = FakeExchange(feed, demo_frames(feed), interval_s=frame_interval_s)
            urls[feed.name] = await fake.start()
            fakes.append(fake)
    service = CollectorService(settings, feeds, urls=urls, refresh_instruments=live)
    collectors = asyncio.create_task(service.run(), name="collectors")
    # The Faust worker owns its event loop and signals, so it runs as a child process.
    if settings.rules_file is None and not live:  # the demo's rules, unless the user has some
        settings = settings.model_copy(update={"rules_file": RULES})
    worker = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "stream", "worker", env={**os.environ, **settings_env(settings)}
    )
    try:
        await stop.wait()
    finally:
        if worker.returncode is None:
            worker.terminate()
        await worker.wait()
        service.stop.set()
        await collectors
        for fake in fakes:
            await fake.stop()


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
