"""The pure engine: rolling windows, sums, totals and history records, the memory of ids
already counted, and the threshold rules (model and evaluator).

Shared by the live worker (stream.worker), the offline `report` and `detect` (stream.commands)
and the view's history store. It imports no shell (worker, view, collectors, cli, commands) and
no Kafka, Faust or HTTP library (tests/engine/test_boundaries.py fails if it does): everything
here is a function of its inputs, so it is tested without a broker.

Modules:
- `totals`: totals records (docs/windows.md), the named sums (`Sums`, `ScopeSums`, `Largest`)
  and the largest-order tie-break;
- `aggregation`: bucketed sums per scope, window sums brought up to date per tick;
- `buckets`: the stored form of a bucket value, versioned (older values migrate on load);
- `recovery`: the exactly-once recovery protocol as one plan the worker carries out;
- `history`: history records of closed buckets and when they are due;
- `dedup`: ids already counted (the worker's first stage and the offline commands);
- `rules` / `evaluator`: the rules file's model and its edge-triggered evaluation.

Adding a metric (say a count per size bucket): the per-bucket sums and what a totals record
says are here (`aggregation._add` and `totals.totals_record`; a new stored field is a new
`buckets` format with its migration); then the view (stream/view) serves it and the dashboard
draws it. Nothing else needs to know.
"""
