"""`liqstream worker`: the batcher (stage one) and the Faust app (stage two) in one process."""

from __future__ import annotations

import asyncio
import logging

import faust

from stream.config import Settings
from stream.worker.agents import WorkerAgents
from stream.worker.app import create_app
from stream.worker.batcher import Batcher
from stream.worker.web import register_web

log = logging.getLogger(__name__)


def build_worker(settings: Settings) -> tuple[faust.App, WorkerAgents]:
    app = create_app(settings)
    agents = WorkerAgents(app, settings)
    register_web(app, agents)

    @app.task
    async def run_batcher() -> None:
        batcher = Batcher(settings, group_id=f"{app.conf.id}-batcher")
        stop = asyncio.Event()
        await batcher.start()
        try:
            await batcher.run(stop)
        finally:
            await batcher.stop()

    return app, agents


def run_worker(settings: Settings) -> None:
    """Blocks until SIGINT/SIGTERM; Faust's worker handles the signals and a clean stop."""
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    app, _ = build_worker(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
