"""A scope: all exchanges or one, all coins or one. Its one textual form, `exchange|coin` with
`*` for "all" (the id the engine keys sums, rule states and stored buckets by), is made and
read here only, as are the keys users see on the topics (`exchange:coin:window` and
`exchange:coin:start`, docs/windows.md: `topic_key`)."""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

ALL = "*"


class Scope(NamedTuple):
    exchange: str | None  # None: all exchanges
    coin: str | None  # None: all coins

    @property
    def id(self) -> str:
        return scope_id(self.exchange, self.coin)


def scope_id(exchange: str | None, coin: str | None) -> str:
    """The id of a scope (None or "*" for a part means all)."""
    return f"{exchange or ALL}|{coin or ALL}"


def topic_key(exchange: str | None, coin: str | None, last: str | int) -> str:
    """The key of a scope's record on a topic: `exchange:coin:` then its window or start."""
    return f"{exchange or ALL}:{coin or ALL}:{last}"


@lru_cache(maxsize=65_536)
def parse_scope(scope_id: str) -> Scope:
    exchange, coin = scope_id.split("|")
    return Scope(None if exchange == ALL else exchange, None if coin == ALL else coin)
