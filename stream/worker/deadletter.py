"""Dead-letter records of the worker: what it refused, why, and enough of it to look at."""

from __future__ import annotations

from typing import Any

import orjson

DEAD_PAYLOAD_CHARS = 4_096  # a record stays far below Kafka's message size, whatever it holds


def dead_letter(reason: str, payload: str, ts_ms: int, **context: Any) -> bytes:
    """`{"source": "worker", "reason", "ts", "payload"}` plus `context`; a payload longer than
    DEAD_PAYLOAD_CHARS is cut there and `truncated_from` gives its length."""
    record: dict[str, Any] = {"source": "worker", "reason": reason, "ts": ts_ms, **context}
    if len(payload) > DEAD_PAYLOAD_CHARS:
        record["truncated_from"] = len(payload)
    record["payload"] = payload[:DEAD_PAYLOAD_CHARS]
    return orjson.dumps(record)
