"""The worker's changelogged tables, declared in one place (as the Faust examples do).

All three are one-partition tables of str keys and bytes values (the engine encodes them):
- `buckets`: a bucket value per time bucket (stream.engine.buckets);
- `rule_states`: the rules' states and the breaches fence (stream.worker.breaches);
- `history`: the history mark (stream.worker.history_publisher).
"""

from __future__ import annotations

from dataclasses import dataclass

import faust
from faust.types import TableT


def raw_table(app: faust.App, name: str) -> TableT:
    """A one-partition changelogged table of str keys and bytes values (we encode them).

    `use_partitioner`: the timer deletes expired keys outside stream iteration."""
    return app.Table(
        name,
        default=None,
        partitions=1,
        use_partitioner=True,
        schema=faust.Schema(
            key_type=str, value_type=bytes, key_serializer="raw", value_serializer="raw"
        ),
    )


@dataclass(frozen=True)
class WorkerTables:
    buckets: TableT
    rule_states: TableT
    history: TableT


def declare_tables(app: faust.App) -> WorkerTables:
    return WorkerTables(
        buckets=raw_table(app, "buckets"),
        rule_states=raw_table(app, "rule_states"),
        history=raw_table(app, "history"),
    )
