"""Which long-running parts of the worker are down: `/healthz` and `/readyz` answer 503 while
any is, so that an orchestrator restarts a worker that serves answers but computes nothing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable

from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)


class Health:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.down: dict[str, str] = {}  # part -> what stopped it
        self.crashes = Counter(
            "liqstream_worker_crashes",
            "Crashes of a part of the worker (aggregate, batcher, view, webhooks)",
            ["part"],
            registry=registry,
        )

    def crashed(self, part: str, exc: BaseException) -> None:
        self.down[part] = f"{type(exc).__name__}: {exc}"
        self.crashes.labels(part).inc()

    def running(self, part: str) -> None:
        self.down.pop(part, None)

    async def watch(self, part: str, work: Awaitable[None]) -> None:
        """Run `work` (a task or agent body): a crash marks `part` down until it runs again,
        and is raised on to Faust (which restarts an agent, or stops the app for a task)."""
        self.running(part)
        try:
            await work
        except Exception as exc:  # not CancelledError: Faust cancels agents on rebalances
            log.exception("%s crashed", part)
            self.crashed(part, exc)
            raise

    @property
    def ok(self) -> bool:
        return not self.down
