"""`liqstream dev`: the whole pipeline on one machine, fed by local fake exchanges.

Local broker -> topics -> one fake exchange per feed (each speaking its venue's protocol and
replaying the demo session, `stream.demo`) and a fake REST server with the instrument listings
of the venues that list instruments paginated or per-instrument (`stream.fake_rest`: Bybit,
OKX, Kraken, dYdX, HTX futures, hundreds of instruments each) -> collectors, which fetch those
listings and subscribe every listed instrument as against the real venues -> Kafka -> worker
(with the demo's rules unless LIQSTREAM_RULES_FILE is set). With `live`, the collectors connect
to the real venues instead, and no demo rules are added.
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
from stream.demo import RULES
from stream.demo.replay import ReplayClock, replay_frames
from stream.errors import LiqstreamError
from stream.fake_exchange import FakeExchange
from stream.fake_rest import FakeRest, serve_listings
from stream.localkafka import die_with_parent

log = logging.getLogger(__name__)

WORKER_STOP_TIMEOUT_S = 30.0


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
) -> None:
    """Run fakes (unless live), collectors and a worker until `stop` is set, then stop them
    all: worker first, then collectors (flushing what they hold), then fakes. Raises
    LiqstreamError if the worker or the collectors end by themselves."""
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
    service = CollectorService(
        collector_settings, feeds, urls=urls, instrument_urls=instrument_urls
    )
    collectors = asyncio.create_task(service.run(), name="collectors")
    worker = await _start_worker(settings)
    worker_exit = asyncio.create_task(worker.wait(), name="worker")
    stopped = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait({stopped, worker_exit, collectors}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        await _stop_worker(worker)
        service.stop.set()
        await asyncio.gather(collectors, return_exceptions=True)
        for fake in fakes:
            await fake.stop()
        await rest.stop()
    if not stop.is_set():
        if collectors.done() and collectors.exception() is not None:
            raise LiqstreamError(f"the collectors failed: {collectors.exception()!r}")
        raise LiqstreamError(f"the worker exited with code {worker.returncode}; see its log above")


async def _start_worker(settings: Settings) -> asyncio.subprocess.Process:
    """The Faust worker owns its event loop and signals, so it runs as a child process: in a
    session of its own, so that Ctrl-C reaches only us and we stop it in order (before the
    broker), and dying with us if we are killed."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "stream",
        "worker",
        env={**os.environ, **settings_env(settings)},
        start_new_session=True,
        preexec_fn=die_with_parent,
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
