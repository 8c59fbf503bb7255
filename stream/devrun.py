"""`liqstream dev`: the whole pipeline on one machine, fed by local fake exchanges.

Local broker -> topics -> one fake exchange per feed (each speaking its venue's protocol) ->
collectors -> Kafka -> worker. With `live`, the collectors connect to the real venues instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from stream.collectors.service import CollectorService
from stream.collectors.venue import Feed
from stream.config import Settings
from stream.fake_exchange import FakeExchange, generated_frames

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
            fake = FakeExchange(feed, generated_frames(feed), interval_s=frame_interval_s)
            urls[feed.name] = await fake.start()
            fakes.append(fake)
    service = CollectorService(settings, feeds, urls=urls, refresh_instruments=live)
    collectors = asyncio.create_task(service.run(), name="collectors")
    try:
        await stop.wait()
    finally:
        service.stop.set()
        await collectors
        for fake in fakes:
            await fake.stop()
