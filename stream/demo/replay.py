"""Replaying the demo session now: offsets become event times and send times.

The live worker counts events on wall-clock windows and rejects events more than 5 minutes in
the future or older than its longest window, so a replay re-bases every order: offset 0 is the
moment the replay starts. Each order is rendered by its venue module just before it is due.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from stream.collectors.instruments import bundled_snapshot
from stream.collectors.venue import Feed
from stream.demo.session import SEED, feed_session
from stream.fake_exchange import Timed
from stream.simulators import simulator_for

_SEQ_PER_RUN = 1_000_000  # orders one feed replays in a run, at most, before ids could repeat


@dataclass(frozen=True, slots=True)
class ReplayClock:
    """Where offset 0 of the session lies on the wall clock (event times, ms) and on the
    monotonic clock (send times, s); `speed` 2 plays the session twice as fast."""

    origin_wall_ms: int
    origin_monotonic_s: float
    speed: float = 1.0

    @classmethod
    def starting_now(cls, speed: float = 1.0) -> ReplayClock:
        return cls(time.time_ns() // 1_000_000, time.monotonic(), speed)

    def event_ts_ms(self, offset_ms: int) -> int:
        return self.origin_wall_ms + round(offset_ms / self.speed)

    def due_s(self, offset_ms: int) -> float:
        return self.origin_monotonic_s + offset_ms / self.speed / 1000

    def first_seq(self) -> int:
        """Sequence numbers (and so ids, for venues whose ids come from them) of this run: the
        worker remembers ids for a day, so a second run that day must not reuse them."""
        return (self.origin_wall_ms // 1000 % _SEQ_PER_RUN) * _SEQ_PER_RUN + 1


def replay_frames(feed: Feed, clock: ReplayClock, seed: int = SEED) -> Iterator[Timed]:
    """The feed's frames of the session, endless, each due at its re-based time."""
    render = simulator_for(feed).render
    instruments = bundled_snapshot(feed.name)
    for seq, order in enumerate(feed_session(feed.name, seed), start=clock.first_seq()):
        ts_ms = clock.event_ts_ms(order.offset_ms)
        text = render(
            instruments[order.symbol], order.side, order.price, order.quantity, ts_ms, seq
        )
        yield Timed(clock.due_s(order.offset_ms), text)
