"""Instrument metadata per feed: bundled snapshot, disk cache, periodic REST refresh.

Contract sizes decide USD amounts, so a collector must never run without them: it starts from
the disk cache (or the bundled snapshot built from the venues' documentation) and refreshes
from the venue's public REST endpoint in the background, following every page to the end
(a refresh with a failed page changes nothing). An unknown symbol triggers at most one refresh
per `min_refresh_interval_s`.

The listing (`symbols()`, what per-instrument feeds subscribe) is exactly the last complete
REST answer: a delisted symbol leaves it, and its connection unsubscribes. Its contract rules
stay readable for the rest of the process, so a late frame of a retired instrument still
parses. Listeners (`on_change`) hear of every change of the listing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import aiohttp

from stream.collectors.venue import Feed, Instrument
from stream.errors import ConfigError

log = logging.getLogger(__name__)

MAX_PAGES = 100  # per request; a cursor that never ends is a venue fault, not a listing
REQUEST_TIMEOUT_S = 20.0


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
        self._listed = set(self._instruments)
        self.refreshed = asyncio.Event()  # set by the first complete REST answer
        self.on_change: list[Callable[[], None]] = []
        self._inflight: asyncio.Future[bool] | None = None

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
        """The instruments the venue lists now (retired ones excluded)."""
        return sorted(self._listed)

    @property
    def can_refresh(self) -> bool:
        return bool(self.url) and self.feed.instruments_from_rest is not None

    def replace(self, instruments: dict[str, Instrument]) -> None:
        """Make `instruments` the listing (and the cache); earlier rules stay readable."""
        listing_changed = set(instruments) != self._listed
        self._instruments = {**self._instruments, **instruments}
        self._listed = set(instruments)
        if self.cache_path is not None:
            try:
                self.cache_path.parent.mkdir(parents=True, exist_ok=True)
                temporary = self.cache_path.with_suffix(".tmp")
                temporary.write_text(json.dumps([asdict(i) for i in instruments.values()]))
                temporary.replace(self.cache_path)
            except OSError as exc:  # the cache only speeds up the next start
                log.warning(
                    "cannot write the instrument cache %s (%s); the listing is used anyway",
                    self.cache_path,
                    exc,
                    extra={"feed": self.feed.name},
                )
        if listing_changed:  # always told: a connection must follow the listing
            for listener in list(self.on_change):
                listener()

    async def wait_first_listing(self, timeout_s: float) -> None:
        """Before a first subscribe: wait (bounded) for the REST listing, else say what is used."""
        if not self.can_refresh or self.refreshed.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._start_refresh(force=True)), timeout_s)
        if not self.refreshed.is_set():
            log.warning(
                "no instrument listing from %s within %.0fs; subscribing the %d cached/bundled"
                " instruments until it arrives",
                self.url,
                timeout_s,
                len(self._listed),
                extra={"feed": self.feed.name},
            )

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch every page from REST; keep the current set on any failure. True when the
        listing or any contract rule changed. Concurrent callers share one fetch."""
        if not self.can_refresh:
            return False
        return await asyncio.shield(self._start_refresh(force=force))

    def _start_refresh(self, *, force: bool) -> asyncio.Future[bool]:
        if self._inflight is not None:
            return self._inflight
        now = time.monotonic()
        if not force and now - self._last_refresh < self.min_refresh_interval_s:
            done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            done.set_result(False)
            return done
        self._last_refresh = now
        task = asyncio.ensure_future(self._fetch_and_apply())
        self._inflight = task

        def _clear(_: asyncio.Future[bool]) -> None:
            self._inflight = None

        task.add_done_callback(_clear)
        return task

    async def _fetch_all(self) -> dict[str, Instrument]:
        assert self.url and self.feed.instruments_from_rest is not None
        fetched: dict[str, Instrument] = {}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for first_url in self.feed.instrument_requests(self.url):
                url: str | None = first_url
                for _ in range(MAX_PAGES):
                    if url is None:
                        break
                    async with session.get(url) as response:
                        response.raise_for_status()
                        payload = await response.json(content_type=None)
                    fetched.update(self.feed.instruments_from_rest(payload))
                    url = self.feed.next_page(url, payload)
                else:
                    raise ValueError(f"{first_url}: more than {MAX_PAGES} pages")
        return fetched

    async def _fetch_and_apply(self) -> bool:
        try:
            fetched = await self._fetch_all()
        except (
            aiohttp.ClientError,
            TimeoutError,
            ValueError,
            KeyError,
            TypeError,
            AttributeError,  # a row that is not an object: `row.get` of a list or number
            IndexError,
        ) as exc:  # an unreadable answer is a failed refresh, never a stopped feed
            log.warning(
                "instrument refresh failed, keeping %d known instruments",
                len(self._listed),
                extra={"feed": self.feed.name, "error": repr(exc)},
            )
            return False
        if not fetched:
            log.warning("instrument refresh returned no instruments; keeping the current ones")
            return False
        changed = set(fetched) != self._listed or any(
            self._instruments.get(symbol) != row for symbol, row in fetched.items()
        )
        retired = self._listed - set(fetched)
        if changed:
            self.replace(fetched)
            log.info(
                "instruments refreshed",
                extra={"feed": self.feed.name, "count": len(fetched), "retired": len(retired)},
            )
        self.refreshed.set()
        return changed
