"""Bounded memory of recent event ids: snapshot feeds repeat events after reconnects.

Feeds whose subscribe answer replays past events (dYdX) keep this memory on disk as well, so a
restarted collector does not publish those events a second time.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)

PERSISTED_IDS = 20_000  # the most recent ids kept on disk: far more than one replay holds


class RecentIds:
    """Remembers the last `capacity` ids; `add` is True only for an id not seen among them.

    With a `path`, the most recent `persisted` ids are read at start and written by `save`.
    """

    def __init__(
        self, capacity: int = 200_000, *, path: Path | None = None, persisted: int = PERSISTED_IDS
    ) -> None:
        self.capacity = capacity
        self.path = path
        self.persisted = persisted
        self._ids: OrderedDict[str, None] = OrderedDict()
        self.dirty = False
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            ids = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable id memory %s: %s", path, exc)
            return
        if not isinstance(ids, list):
            log.warning("ignoring id memory %s: not a list", path)
            return
        for event_id in ids[-self.capacity :]:
            if isinstance(event_id, str):
                self._ids[event_id] = None

    def add(self, event_id: str) -> bool:
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        self.dirty = True
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True

    def save(self) -> None:
        """Write the most recent ids (atomically); a no-op without a path or changes."""
        if self.path is None or not self.dirty:
            return
        recent = list(self._ids)[-self.persisted :]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(recent))
        temporary.replace(self.path)
        self.dirty = False

    def __len__(self) -> int:
        return len(self._ids)
