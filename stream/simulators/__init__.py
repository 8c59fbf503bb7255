"""Fake venues: one module per exchange, `stream.simulators.<id>` beside
`stream.collectors.<id>`, each declaring `SIMULATORS` (feed name -> `Simulator`)."""

from __future__ import annotations

import importlib

from stream.collectors.venue import Feed
from stream.simulators.base import Simulator


def simulator_for(feed: Feed) -> Simulator:
    """The server side of `feed`, from the simulator module named like its venue."""
    module = importlib.import_module(f"stream.simulators.{feed.exchange}")
    simulators: dict[str, Simulator] = module.SIMULATORS
    return simulators[feed.name]
