"""Which long-running parts of the worker are down: `/healthz` and `/readyz` answer 503 while
any is, so that an orchestrator restarts a worker that serves answers but computes nothing."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class Health:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.down: dict[str, str] = {}  # part -> what stopped it
        self.crashes = Counter(
            "liqstream_worker_crashes",
            "Crashes of a part of the worker (the aggregation agent)",
            ["part"],
            registry=registry,
        )

    def crashed(self, part: str, exc: BaseException) -> None:
        self.down[part] = f"{type(exc).__name__}: {exc}"
        self.crashes.labels(part).inc()

    def running(self, part: str) -> None:
        self.down.pop(part, None)

    @property
    def ok(self) -> bool:
        return not self.down
