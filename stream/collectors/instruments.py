"""Instrument metadata per feed: bundled snapshot, disk cache, periodic REST refresh.

Contract sizes decide USD amounts, so a collector must never run without them: it starts from
the disk cache (or the bundled snapshot built from the venues' documentation) and refreshes
from the venue's public REST endpoint in the background. An unknown symbol triggers at most
one refresh per `min_refresh_interval_s`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import aiohttp

from stream.collectors.venue import Feed, Instrument
from stream.errors import ConfigError

log = logging.getLogger(__name__)


def instruments_from_json(rows: object, source: str) -> dict[str, Instrument]:
    """Validate a snapshot/cache file's content; raise ConfigError naming the bad row."""
    if not isinstance(rows, list):
        raise ConfigError(f"{source}: expected a JSON list of instruments")
    instruments: dict[str, Instrument] = {}
    for index, row in enumerate(rows):
        try:
            instrument = Instrument(**row)
        except TypeError as exc:
            raise ConfigError(f"{source}: row {index}: {exc}") from None
        if instrument.contract_type not in ("linear", "inverse") or instrument.contract_size <= 0:
            raise ConfigError(f"{source}: row {index}: invalid contract rules {row!r}")
        instruments[instrument.symbol] = instrument
    return instruments


def bundled_snapshot(feed_name: str) -> dict[str, Instrument]:
    """The snapshot shipped in the package, or {} for feeds that need no metadata."""
    resource = resources.files("stream.collectors").joinpath("snapshots", f"{feed_name}.json")
    if not resource.is_file():
        return {}
    return instruments_from_json(json.loads(resource.read_text()), f"snapshot {feed_name}")


class InstrumentBook(Mapping[str, Instrument]):
    """The current instruments of one feed; a read-only mapping for the pure parser."""

    def __init__(
        self,
        feed: Feed,
        cache_dir: Path | None = None,
        *,
        url: str | None = None,  # None: the feed's endpoint; "": never refresh (offline)
        min_refresh_interval_s: float = 60.0,
    ) -> None:
        self.feed = feed
        self.url = url if url is not None else feed.instruments_url
        self.cache_path = cache_dir / f"{feed.name}.json" if cache_dir else None
        self.min_refresh_interval_s = min_refresh_interval_s
        self._last_refresh = float("-inf")
        self._instruments = self._load_cached() or bundled_snapshot(feed.name)

    def _load_cached(self) -> dict[str, Instrument]:
        if self.cache_path is None or not self.cache_path.is_file():
            return {}
        try:
            return instruments_from_json(
                json.loads(self.cache_path.read_text()), str(self.cache_path)
            )
        except (ValueError, ConfigError) as exc:
            log.warning("ignoring unreadable instrument cache %s: %s", self.cache_path, exc)
            return {}

    def __getitem__(self, symbol: str) -> Instrument:
        return self._instruments[symbol]

    def __iter__(self) -> Iterator[str]:
        return iter(self._instruments)

    def __len__(self) -> int:
        return len(self._instruments)

    def symbols(self) -> list[str]:
        return sorted(self._instruments)

    def replace(self, instruments: dict[str, Instrument]) -> None:
        self._instruments = instruments
        if self.cache_path is not None:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_path.with_suffix(".tmp")
            temporary.write_text(json.dumps([asdict(i) for i in instruments.values()]))
            temporary.replace(self.cache_path)

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch from REST; keep the current set on any failure. True when it changed."""
        if not self.url or self.feed.instruments_from_rest is None:
            return False
        now = time.monotonic()
        if not force and now - self._last_refresh < self.min_refresh_interval_s:
            return False
        self._last_refresh = now
        try:
            timeout = aiohttp.ClientTimeout(total=20)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.url) as response,
            ):
                response.raise_for_status()
                payload = await response.json(content_type=None)
            fetched = self.feed.instruments_from_rest(payload)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "instrument refresh failed, keeping %d known instruments",
                len(self._instruments),
                extra={"feed": self.feed.name, "error": repr(exc)},
            )
            return False
        if not fetched:
            return False
        changed = fetched != self._instruments
        if changed:
            self.replace({**self._instruments, **fetched})
            log.info("instruments refreshed", extra={"feed": self.feed.name, "count": len(fetched)})
        return changed
