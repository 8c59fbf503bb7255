"""The exactly-once recovery protocol as one pure plan (the worker's shells only carry it out).

After a crash, a restart or a rebalance, the worker knows: the offset of the last batch each
persisted bucket holds (`"o"` of the bucket values), the batches topic's committed and end
offsets, and the fence history of the breaches topic (per record-producing batch, the breaches
topic's end offsets after its records). From these alone follow:

- which buckets to write to the changelog again: Faust writes RocksDB at once and the changelog
  a little later, so after a kill -9 a bucket may hold a batch its changelog record does not.
  That batch is delivered again (not committed) but skipped for this bucket: write it again;
- whether the batches topic was deleted and created again (a state holding a batch at or past
  the topic's end): keep the counts, forget the offsets, write every bucket again;
- where the batches partition must be sought to (nothing committed yet: its beginning);
- up to which batch the totals lag behind states already published (the catch-up point):
  until then only per-event rules run, then every rule is evaluated once;
- from which batch on published breach records must not be published again, and where to start
  reading the breaches topic back so that every such record is seen;
- which of the records read back are repeats to suppress when their batch is evaluated again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# (the last batch offset whose records all precede `ends`, ends per breaches partition)
FenceEntry = tuple[int, Mapping[int, int]]
# (publication timestamp, offset of the batch that caused it or -1 for time, breach record)
ReplayedRecord = tuple[int, int, dict[str, Any]]


@dataclass(frozen=True)
class Replay:
    """What the breach records read back imply, in publication order."""

    apply: tuple[dict[str, Any], ...]  # every record: the state each implies
    suppress: tuple[dict[str, Any], ...]  # event-caused records of batches delivered again
    redelivered_until: int  # the last batch with records that will be evaluated again


@dataclass(frozen=True)
class RecoveryPlan:
    active: bool
    rewrite: tuple[int, ...] = ()  # buckets to write to the changelog again
    forget_offsets: bool = False  # the batches topic was recreated: every "o" back to -1
    seek_to_start: bool = False  # seek the batches partition to offset 0
    catch_up_until: int | None = None  # batches before it are delivered again
    rules_from: int = 0  # batches from here on are evaluated again: their records are repeats
    replay_from: Mapping[int, int] = field(default_factory=dict)  # breaches partition -> offset
    fence: Mapping[int, int] = field(default_factory=dict)  # the last fence the table holds

    @property
    def evaluate_at_once(self) -> bool:
        """Nothing to catch up: evaluate every rule now (time may have moved them)."""
        return self.active and self.catch_up_until is None

    def replay(self, records: Iterable[ReplayedRecord]) -> Replay:
        """The records read back from `replay_from`: all of them set states; those caused by
        an event of a batch that will be delivered again are not to be published again
        (time-driven ones are in the state already and are not produced again)."""
        ordered = [record for _, _, record in sorted(records, key=lambda item: item[0])]
        batches = [batch for _, batch, _ in sorted(records, key=lambda item: item[0])]
        suppress = []
        redelivered_until = -1
        for batch, record in zip(batches, ordered, strict=True):
            if batch >= self.rules_from:
                redelivered_until = max(redelivered_until, batch)
                if record["event_id"] is not None:
                    suppress.append(record)
        return Replay(tuple(ordered), tuple(suppress), redelivered_until)


def plan_recovery(
    *,
    active: bool,
    bucket_offsets: Mapping[int, int],
    committed: int,
    end: int,
    fence_history: Sequence[FenceEntry],
) -> RecoveryPlan:
    """The plan from the table's bucket offsets, the batches topic's `committed` offset (0 if
    nothing was committed) and `end` offset, and the fence history (oldest first).

    A standby (`active` False) holds no state: nothing to rewrite, replay or evaluate."""
    if not active:
        return RecoveryPlan(active=False, catch_up_until=end)
    rewrite = tuple(b for b, offset in bucket_offsets.items() if offset >= committed)
    applied = max(bucket_offsets.values(), default=-1)
    seek_to_start = committed == 0
    forget_offsets = applied >= end
    rules_from = committed
    if forget_offsets:
        # Offsets of one topic only grow: this state was built from a batches topic since
        # deleted and created again. Its offsets would make every new batch of those buckets
        # look applied already (for up to a day). The old topic's records were all published.
        rewrite = tuple(bucket_offsets)
        rules_from = applied + 1
        if committed > end:  # an offset the group kept of the old topic
            committed = 0
            seek_to_start = True
    replay_from: Mapping[int, int] = {}  # nothing older: read from the beginning
    for batch, ends in fence_history:
        if batch < rules_from:
            replay_from = ends
    return RecoveryPlan(
        active=True,
        rewrite=rewrite,
        forget_offsets=forget_offsets,
        seek_to_start=seek_to_start,
        catch_up_until=None if committed >= end else end,
        rules_from=rules_from,
        replay_from=dict(replay_from),
        fence=dict(fence_history[-1][1]) if fence_history else {},
    )
