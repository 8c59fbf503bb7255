"""The fake REST listings `liqstream dev` and `liqstream fake-exchange` serve: each feed's
bundled instruments come back with exactly their contract rules (so the demo's frames keep their
amounts), among realistic numbers of synthetic ones, paginated as the venue does."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.collectors.instruments import InstrumentBook, bundled_snapshot
from stream.collectors.registry import FEEDS
from stream.fake_rest import SYNTHETIC_COUNTS, FakeRest, serve_listings


@pytest.mark.parametrize("name", sorted(SYNTHETIC_COUNTS))
async def test_listing_gives_back_the_bundled_rules(name: str, tmp_path: Path) -> None:
    rest = FakeRest()
    assert serve_listings(rest, [name, "binance-usdm"]) == [name]  # no endpoint for Binance
    await rest.start()
    try:
        book = InstrumentBook(FEEDS[name], tmp_path, url=rest.url(name))
        assert await book.refresh(force=True)
    finally:
        await rest.stop()
    bundled = bundled_snapshot(name)
    assert {symbol: book[symbol] for symbol in bundled} == bundled
    assert set(bundled) <= set(book.symbols())
    assert len(book.symbols()) >= SYNTHETIC_COUNTS[name]
    if name == "bybit-linear":  # more than one page of 1,000 rows: the cursor was followed
        assert len(book.symbols()) > 1000
        assert any("cursor=" in path for path in rest.requests)
