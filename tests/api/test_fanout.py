"""The SSE fan-out core, as pure code: coalescing per key between ticks, one encoding for every
client, only what changed since a client's last write (through its filter), and a client
that fell behind ended while the others go on."""

from __future__ import annotations

import time

import orjson
import pytest

from stream.config import load_settings
from stream.view.consumer import PING_S, ViewFeeder
from stream.view.fanout import Fanout, StreamFilter
from stream.view.state import BadRequest, GlobalView
from tests.api.test_view import FEEDS, WINDOWS, key, totals

EVERYTHING = StreamFilter()


def frames(payload: bytes) -> list[tuple[str, dict]]:
    """(kind, record) of each SSE event in `payload`, in order."""
    told = []
    for event in payload.split(b"\n\n"):
        if not event:
            continue
        kind_line, data_line = event.split(b"\n")
        assert kind_line.startswith(b"event: ") and data_line.startswith(b"data: "), event
        told.append((kind_line[7:].decode(), orjson.loads(data_line[6:])))
    return told


def offer_totals(fanout: Fanout, record: dict) -> None:
    fanout.offer("totals", record, key(record))


def breach(rule: str, exchange: str | None = None, coin: str | None = None) -> dict:
    return {"rule": rule, "state": "breach", "ts": 1, "exchange": exchange, "coin": coin}


def test_a_tick_sends_each_key_once_its_latest_and_every_event() -> None:
    fanout = Fanout(max_lag_s=10)
    first, latest = totals(None, None, "24h", 1), totals(None, None, "24h", 2)
    btc = totals(None, "BTC", "24h", 1)
    offer_totals(fanout, first)
    fanout.offer("breach", breach("a"))
    offer_totals(fanout, btc)
    offer_totals(fanout, latest)  # replaces `first`, keeps its place
    fanout.offer("breach", breach("a"))  # an event: never coalesced
    assert fanout.since(0, EVERYTHING) == b""  # nothing before the tick
    assert fanout.tick(now_s=100.0) is True
    assert frames(fanout.since(0, EVERYTHING) or b"") == [
        ("totals", latest),
        ("breach", breach("a")),
        ("totals", btc),
        ("breach", breach("a")),
    ]
    assert fanout.coalesced == 1
    assert fanout.since(fanout.seq, EVERYTHING) == b""  # up to date: nothing more
    assert fanout.tick(now_s=100.25) is False  # nothing pending: no tick, no wake-ups


def test_the_payload_is_encoded_once_and_shared_by_clients_alike() -> None:
    fanout = Fanout(max_lag_s=10)
    offer_totals(fanout, totals(None, None, "24h"))
    offer_totals(fanout, totals(None, "BTC", "24h"))
    fanout.tick(now_s=1.0)
    btc = StreamFilter(coin=("BTC",))
    one, two = fanout.since(0, EVERYTHING), fanout.since(0, EVERYTHING)
    assert one is two  # the same bytes object: built once for every client at this cursor
    assert fanout.since(0, btc) is fanout.since(0, btc)
    assert [r["coin"] for _, r in frames(fanout.since(0, btc) or b"")] == ["BTC"]


def test_a_client_behind_by_ticks_gets_what_changed_since_its_last_write_once() -> None:
    fanout = Fanout(max_lag_s=10)
    market = [totals(None, None, "24h", n) for n in (1, 2, 3)]
    eth = totals(None, "ETH", "1h", 7)
    offer_totals(fanout, market[0])
    offer_totals(fanout, eth)
    fanout.tick(now_s=1.0)
    up_to_date = fanout.seq
    offer_totals(fanout, market[1])
    fanout.offer("status", {"exchange": "okx", "feed": "okx", "state": "gap"})
    fanout.tick(now_s=2.0)
    offer_totals(fanout, market[2])
    fanout.tick(now_s=3.0)
    # a client that wrote before the first tick: each key once, at its latest
    assert frames(fanout.since(0, EVERYTHING) or b"") == [
        ("totals", eth),
        ("status", {"exchange": "okx", "feed": "okx", "state": "gap"}),
        ("totals", market[2]),
    ]
    # one that wrote after the first: only what changed since
    assert [r.get("count") for _, r in frames(fanout.since(up_to_date, EVERYTHING) or b"")] == [
        None,
        3,
    ]


def test_filters_select_as_the_totals_query_does() -> None:
    fanout = Fanout(max_lag_s=10)
    records = [
        totals(None, None, "24h"),
        totals(None, "BTC", "24h"),
        totals(None, "BTC", "1h"),
        totals("okx", "BTC", "24h"),
        totals("okx", None, "24h"),
    ]
    for record in records:
        offer_totals(fanout, record)
    fanout.offer("breach", breach("market"))
    fanout.offer("breach", breach("okx-btc", "okx", "BTC"))
    fanout.offer("status", {"exchange": "okx", "feed": "okx", "state": "connected"})
    fanout.offer("status", {"exchange": "bybit", "feed": "bybit-linear", "state": "connected"})
    fanout.tick(now_s=1.0)

    def told(wanted: StreamFilter) -> list[str]:
        return [
            key(r) if kind == "totals" else f"{kind}:{r.get('rule') or r['feed']}"
            for kind, r in frames(fanout.since(0, wanted) or b"")
        ]

    assert told(StreamFilter(coin=("BTC",))) == [
        "*:BTC:24h",
        "*:BTC:1h",
        "okx:BTC:24h",
        "breach:okx-btc",
        "status:okx",  # status records have no coin: the coin filter leaves them
        "status:bybit-linear",
    ]
    assert told(StreamFilter(window="24h", exchange=(None,), coin=(None,))) == [
        "*:*:24h",
        "breach:market",
    ]
    assert told(StreamFilter(exchange=("okx",))) == [
        "okx:BTC:24h",
        "okx:*:24h",
        "breach:okx-btc",
        "status:okx",
    ]


def test_a_client_that_fell_behind_is_told_to_reload_the_others_go_on() -> None:
    fanout = Fanout(max_lag_s=2)
    offer_totals(fanout, totals(None, None, "24h", 1))
    fanout.tick(now_s=10.0)
    slow = fanout.seq - 1  # never wrote since before the first tick
    for n, now_s in enumerate((11.0, 12.0, 13.0), start=2):
        offer_totals(fanout, totals(None, None, "24h", n))
        fanout.tick(now_s)
    assert fanout.since(slow, EVERYTHING) is None  # the tick it missed is forgotten: reload
    fast = fanout.seq - 1
    assert [r["count"] for _, r in frames(fanout.since(fast, EVERYTHING) or b"")] == [4]
    # ticks older than the lag are forgotten even when nothing new arrives
    fanout.tick(now_s=30.0)
    assert fanout.since(fast, EVERYTHING) is None
    assert fanout.since(fanout.seq, EVERYTHING) == b""


def test_the_feeder_wakes_subscribers_once_per_tick_with_changes() -> None:
    feeder = ViewFeeder(load_settings(), GlobalView(WINDOWS, FEEDS))
    everything, btc = feeder.subscribe(EVERYTHING), feeder.subscribe(StreamFilter(coin=("BTC",)))
    topics = feeder.topics
    for record in (totals(None, None, "24h", 1), totals(None, "BTC", "24h", 1)):
        for n in range(3):  # three updates of each key before the tick
            feeder._apply(topics.totals, key(record).encode(), orjson.dumps({**record, "count": n}))
    assert not everything.wake.is_set()
    feeder.tick()
    assert everything.wake.is_set() and btc.wake.is_set()
    btc_told = frames(feeder.fanout.since(btc.cursor, btc.wanted) or b"")
    assert [(r["coin"], r["count"]) for _, r in btc_told] == [("BTC", 2)]
    assert len(frames(feeder.fanout.since(everything.cursor, everything.wanted) or b"")) == 2
    feeder.unsubscribe(btc)
    assert feeder.subscribers == {everything}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, EVERYTHING),
        ({"coin": "btc"}, StreamFilter(coin=("BTC",))),
        ({"coin": "xbt", "window": "1h"}, StreamFilter(window="1h", coin=("BTC",))),
        ({"exchange": "OKX", "coin": "all"}, StreamFilter(exchange=("okx",), coin=(None,))),
    ],
)
def test_stream_filters_read_like_the_totals_query(params: dict, expected: StreamFilter) -> None:
    assert GlobalView(WINDOWS, FEEDS).stream_filter(params) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "7m"}, "unknown window '7m'"),
        ({"exchange": "nasdaq"}, "unknown exchange 'nasdaq'"),
        ({"coin": " "}, "an empty exchange or coin filter"),
        ({"rule": "x"}, "unknown parameter 'rule'"),
    ],
)
def test_stream_filters_refuse_what_the_totals_query_refuses(params: dict, message: str) -> None:
    with pytest.raises(BadRequest) as error:
        GlobalView(WINDOWS, FEEDS).stream_filter(params)
    assert message in str(error.value)


def test_with_nobody_subscribed_nothing_is_encoded_and_a_later_client_starts_afresh() -> None:
    feeder = ViewFeeder(load_settings(), GlobalView(WINDOWS, FEEDS))
    record = totals(None, None, "24h", 1)
    feeder._apply(feeder.topics.totals, key(record).encode(), orjson.dumps(record))
    feeder.tick()
    assert feeder.fanout.seq == 0  # no tick published: nobody to send it to
    late = feeder.subscribe(EVERYTHING)
    newer = totals(None, None, "24h", 2)
    feeder._apply(feeder.topics.totals, key(newer).encode(), orjson.dumps(newer))
    feeder.tick()
    assert frames(feeder.fanout.since(late.cursor, EVERYTHING) or b"") == [("totals", newer)]


def test_the_tick_pings_idle_clients_and_cuts_off_a_stalled_write() -> None:
    feeder = ViewFeeder(load_settings(stream_max_lag="10s"), GlobalView(WINDOWS, FEEDS))
    idle, stalled = feeder.subscribe(EVERYTHING), feeder.subscribe(EVERYTHING)
    aborted = []
    stalled.abort = lambda: aborted.append(True)
    stalled.writing_since = time.monotonic() - 11  # its write has waited past the lag
    feeder.tick()
    assert aborted == [True] and feeder.dropped == 1 and feeder.subscribers == {idle}
    assert not idle.wake.is_set()  # nothing published, no ping due yet
    feeder._pinged_at -= PING_S
    feeder.tick()
    assert idle.wake.is_set() and idle.ping  # its handler writes a ping
