"""Server-Sent Events fan-out that costs per tick, not per record per client. Pure: no I/O.

Between two ticks the changes are coalesced per key (the latest totals record of a key wins;
breach and status records are events, each kept). At a tick every change is encoded once, as
the SSE frame every client gets. A client is sent, at its next write, only what changed since
its last one: the frames of the ticks after its cursor, each key once (its latest), through
its filter; the payload of a (cursor, filter) pair is built once per tick and shared by every
client that asks for the same. The ticks of the last `max_lag_s` are kept: a client whose
cursor is older than that fell behind, and is ended so that it reconnects and reloads a
snapshot, while the others go on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

Scope = tuple[str | None] | None  # None: no filter; (value,): only that (None: the all-scope)


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What a client of /api/stream asked for: totals of one window, and records of one
    exchange and one coin (each `(None,)` for the all-scope), as /api/totals reads them.
    Breach records are matched on exchange and coin, status records on exchange only."""

    window: str | None = None
    exchange: Scope = None
    coin: Scope = None

    @property
    def everything(self) -> bool:
        return self.window is None and self.exchange is None and self.coin is None

    def matches(self, entry: Entry) -> bool:
        if entry.kind == "totals" and self.window is not None and entry.window != self.window:
            return False
        if self.exchange is not None and entry.exchange != self.exchange[0]:
            return False
        return not (self.coin is not None and entry.kind != "status" and entry.coin != self.coin[0])


@dataclass(frozen=True, slots=True)
class Entry:
    """One change as published at a tick: its coalescing key, what filters look at, and its
    SSE frame, encoded once for every client."""

    key: Hashable
    kind: str
    exchange: str | None
    coin: str | None
    window: str | None
    frame: bytes


def encode(key: Hashable, kind: str, record: Mapping[str, Any]) -> Entry:
    return Entry(
        key=key,
        kind=kind,
        exchange=_text(record.get("exchange")),
        coin=_text(record.get("coin")),
        window=_text(record.get("window")),
        frame=b"event: %s\ndata: %s\n\n" % (kind.encode(), orjson.dumps(record)),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class Fanout:
    def __init__(self, max_lag_s: float) -> None:
        self.max_lag_s = max_lag_s
        self.seq = 0  # the last tick that published anything
        self._pending: dict[Hashable, tuple[str, Mapping[str, Any]]] = {}
        self._events = 0  # numbers the pending events (never coalesced)
        self._ticks: deque[tuple[int, float, list[Entry]]] = deque()  # (seq, time, entries)
        self._payloads: dict[tuple[int, StreamFilter], bytes] = {}  # for the current seq
        self.coalesced = 0  # changes replaced by a later one of the same key before a tick

    def offer(self, kind: str, record: Mapping[str, Any], key: str | None = None) -> None:
        """A change for the next tick: with a `key` (totals), it replaces the pending change
        of the same key; without, it is an event of its own."""
        if key is None:
            self._events += 1
            self._pending[(kind, self._events)] = (kind, record)
            return
        if (kind, key) in self._pending:
            self.coalesced += 1
        self._pending[(kind, key)] = (kind, record)

    def forget_pending(self) -> None:
        """Drops the changes not yet published (nobody listens: a client that subscribes
        later starts from the next tick)."""
        self._pending.clear()

    def tick(self, now_s: float) -> bool:
        """Publishes the pending changes (True if there were any) and forgets the ticks
        older than `max_lag_s`."""
        while self._ticks and self._ticks[0][1] < now_s - self.max_lag_s:
            self._ticks.popleft()
        if not self._pending:
            return False
        entries = [encode(key, kind, record) for key, (kind, record) in self._pending.items()]
        self._pending.clear()
        self.seq += 1
        self._ticks.append((self.seq, now_s, entries))
        self._payloads.clear()
        return True

    def since(self, cursor: int, wanted: StreamFilter) -> bytes | None:
        """The frames a client at `cursor` (the seq of its last write) is due, through its
        filter, each key once; b"" when it is up to date, None when the ticks it missed are
        no longer kept (it fell behind: end its stream)."""
        if cursor >= self.seq:
            return b""
        oldest = self._ticks[0][0] if self._ticks else self.seq + 1
        if cursor < oldest - 1:
            return None
        cached = self._payloads.get((cursor, wanted))
        if cached is not None:
            return cached
        if cursor == self.seq - 1:  # the usual case: one tick, its keys already distinct
            entries = self._ticks[-1][2]
            chosen = entries if wanted.everything else [e for e in entries if wanted.matches(e)]
        else:
            seen: set[Hashable] = set()
            chosen = []
            for seq, _, entries in reversed(self._ticks):
                if seq <= cursor:
                    break
                for entry in reversed(entries):
                    if entry.key not in seen:
                        seen.add(entry.key)
                        if wanted.matches(entry):
                            chosen.append(entry)
            chosen.reverse()
        payload = b"".join(entry.frame for entry in chosen)
        self._payloads[(cursor, wanted)] = payload
        return payload
