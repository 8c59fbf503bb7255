"""The global view the API answers from: queries, filters and their 400s."""

from __future__ import annotations

import orjson
import pytest

from stream.config import load_settings
from stream.view.consumer import ViewFeeder
from stream.view.state import BadRequest, GlobalView

WINDOWS = ("5m", "1h", "24h")
FEEDS = {
    "binance-usdm": ("binance", True, "sampled"),
    "okx": ("okx", True, ""),
    "bitmex": ("bitmex", False, ""),
}
NOW = 1_762_300_000_000


def largest(n: int, usd: float) -> dict:
    return {
        "id": f"e{n}",
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "side": "long",
        "price": 1.0,
        "quantity": usd,
        "notional_usd": usd,
        "ts": NOW - n,
    }


def totals(exchange, coin, window, count=1, usd=100.0, big=None) -> dict:
    return {
        "exchange": exchange,
        "coin": coin,
        "window": window,
        "as_of": NOW,
        "total_usd": usd,
        "long_usd": usd,
        "short_usd": 0.0,
        "count": count,
        "long_count": count,
        "short_count": 0,
        "largest": big,
    }


def key(record: dict) -> str:
    return f"{record['exchange'] or '*'}:{record['coin'] or '*'}:{record['window']}"


@pytest.fixture
def view() -> GlobalView:
    v = GlobalView(WINDOWS, FEEDS)
    for record in (
        totals(None, None, "24h", 3, 600.0),
        totals(None, None, "5m", 1, 100.0),
        totals(None, "BTC", "24h", 2, 500.0),
        totals("binance", "BTC", "24h", 1, 400.0, largest(1, 400.0)),
        totals("okx", "BTC", "24h", 1, 100.0, largest(2, 100.0)),
        totals("okx", "ETH", "24h", 1, 100.0, largest(3, 100.0)),
        totals("okx", None, "24h", 2, 200.0),
    ):
        v.add_totals(key(record), record)
    return v


def test_totals_filters_and_the_all_scope(view: GlobalView) -> None:
    assert view.query_totals({}, NOW)["windows"] == ["5m", "1h", "24h"]  # for the dashboard
    market = view.query_totals({"exchange": "all", "coin": "all"}, NOW)["totals"]
    assert [(r["window"], r["count"]) for r in market] == [("5m", 1), ("24h", 3)]
    btc = view.query_totals({"coin": "btc", "window": "24h"}, NOW)["totals"]
    assert [(r["exchange"], r["coin"]) for r in btc] == [
        (None, "BTC"),
        ("binance", "BTC"),
        ("okx", "BTC"),
    ]
    for alias in ("XBT", "xbt", "1000BTC", "1000btc", "kBTC"):  # as venues name coins
        assert view.query_totals({"coin": alias, "window": "24h"}, NOW)["totals"] == btc, alias
    okx = view.query_totals({"exchange": "OKX", "coin": "*"}, NOW)["totals"]
    assert [(r["exchange"], r["coin"]) for r in okx] == [("okx", None)]


def test_an_emptied_window_or_a_tombstone_leaves_the_answer(view: GlobalView) -> None:
    view.add_totals("*:*:5m", totals(None, None, "5m", 0, 0.0))
    view.add_totals("okx:ETH:24h", None)
    assert {key(r) for r in view.query_totals({"window": "5m"}, NOW)["totals"]} == set()
    assert "okx:ETH:24h" not in {key(r) for r in view.query_totals({}, NOW)["totals"]}


def test_largest_comes_from_exchange_and_coin_scopes(view: GlobalView) -> None:
    answer = view.query_largest({"window": "24h", "limit": "2"})
    assert [o["id"] for o in answer["largest"]] == ["e1", "e3"]  # a tie: the earlier first
    assert view.query_largest({})["window"] == "24h"


def test_breaches_newest_first_bounded_and_by_rule() -> None:
    v = GlobalView(WINDOWS, FEEDS, max_breaches=3)
    for n in range(5):
        v.add_breach({"rule": "a" if n % 2 else "b", "ts": NOW - 10 + n, "state": "breach"})
    v.add_breach({"rule": "a", "ts": NOW - 2 * 86_400_000, "state": "breach"})  # too old
    assert [r["ts"] for r in v.query_breaches({}, NOW)["breaches"]] == [NOW - 6, NOW - 7, NOW - 8]
    assert [r["ts"] for r in v.query_breaches({}, NOW + 86_400_000 - 6)["breaches"]] == [NOW - 6]
    assert [r["rule"] for r in v.query_breaches({"rule": "b", "limit": "1"}, NOW)["breaches"]] == [
        "b"
    ]


def test_breaches_read_in_any_order_give_the_same_answer() -> None:
    """Partitions of the breaches topic interleave differently on each worker."""
    records = [
        {"rule": rule, "ts": NOW - ts, "state": "breach", "exchange": None, "coin": coin}
        for rule, ts, coin in [
            ("a", 5, "BTC"),
            ("b", 5, None),
            ("a", 5, None),
            ("c", 1, None),
            ("b", 9, "ETH"),
            ("a", 7, "ETH"),
        ]
    ]
    answers = []
    for order in (records, records[::-1], records[2:] + records[:2]):
        v = GlobalView(WINDOWS, FEEDS, max_breaches=4)
        for record in order:
            v.add_breach(record)
        answers.append(v.query_breaches({}, NOW)["breaches"])
    assert answers[0] == answers[1] == answers[2]
    v = GlobalView(WINDOWS, FEEDS)
    assert [v.add_breach(r) for r in records + records[:3]] == [True] * 6 + [False] * 3
    assert v.query_breaches({}, NOW)["breaches"] == answers[0] + [records[4], records[5]][::-1]
    assert [(r["rule"], r["ts"], r["coin"]) for r in answers[0]] == [
        ("c", NOW - 1, None),
        ("b", NOW - 5, None),
        ("a", NOW - 5, "BTC"),
        ("a", NOW - 5, None),
    ]


def test_coverage_tracks_state_gaps_and_sampling() -> None:
    v = GlobalView(WINDOWS, FEEDS)
    v.add_status({"exchange": "okx", "feed": "okx", "state": "connected", "ts": NOW - 100})
    gap = {
        "exchange": "okx",
        "feed": "okx",
        "state": "gap",
        "ts": NOW - 50,
        "gap_start": NOW - 90,
        "gap_end": NOW - 60,
    }
    v.add_status(gap)
    v.add_status(gap)  # read again after a reconnect
    v.add_status(
        {
            "exchange": "okx",
            "feed": "okx",
            "state": "gap",
            "ts": NOW,
            "gap_start": NOW - 3 * 86_400_000,
            "gap_end": NOW - 2 * 86_400_000,
        }
    )
    v.add_status({"exchange": "bitmex", "feed": "bitmex", "state": "disconnected", "ts": NOW})
    venues = {r["feed"]: r for r in v.query_coverage({}, NOW)["venues"]}
    assert venues["okx"]["state"] == "connected" and venues["okx"]["since"] == NOW - 100
    assert venues["okx"]["gaps_24h"] == [{"start": NOW - 90, "end": NOW - 60}]
    assert venues["okx"]["lower_bound"] is True
    assert venues["bitmex"]["state"] == "disconnected" and venues["bitmex"]["lower_bound"] is False
    assert (
        venues["binance-usdm"]["state"] == "unknown" and venues["binance-usdm"]["note"] == "sampled"
    )


def coverage_record(feed: str, ts: int, listed: int, subscribed: int, *rejected: str, **more):
    """A `coverage` status record as the collectors write it (docs/events.md)."""
    exchange = feed.split("-")[0]
    return {
        "exchange": exchange,
        "feed": feed,
        "state": "coverage",
        "ts": ts,
        "instruments_listed": listed,
        "instruments_subscribed": subscribed,
        "rejected": [
            {"topic": t, "reason": f"error:handler not found,topic:{t}"} for t in rejected
        ],
        **more,
    }


def test_coverage_keeps_the_latest_subscriptions_of_each_feed() -> None:
    v = GlobalView(WINDOWS, FEEDS)
    v.add_status({"exchange": "okx", "feed": "okx", "state": "connected", "ts": NOW - 100})
    v.add_status(coverage_record("okx", NOW - 90, 300, 290, "liquidation-orders.X"))
    v.add_status(coverage_record("okx", NOW - 10, 310, 310))  # after a refresh: all of them
    v.add_status(coverage_record("okx", NOW - 90, 300, 290, "liquidation-orders.X"))  # re-read
    v.add_status(coverage_record("binance-usdm", NOW, 420, 420, wildcard=True))
    partial = coverage_record("bybit-linear", NOW, 805, 803, "allLiquidation.AUSDT", "B")
    partial["rejected"][0]["retried"] = True  # more than documented: not answered
    v.add_status(partial)  # a feed known only from the topic
    venues = {r["feed"]: r for r in v.query_coverage({}, NOW)["venues"]}

    okx = venues["okx"]
    assert (okx["instruments_listed"], okx["instruments_subscribed"]) == (310, 310)
    assert okx["rejected"] == [] and okx["wildcard"] is False
    assert okx["coverage_as_of"] == NOW - 10
    assert (okx["state"], okx["since"]) == ("connected", NOW - 100)  # not a connection change
    binance = venues["binance-usdm"]
    assert (binance["instruments_subscribed"], binance["instruments_listed"]) == (420, 420)
    assert binance["wildcard"] is True and binance["state"] == "unknown"
    bybit = venues["bybit-linear"]
    assert (bybit["exchange"], bybit["instruments_subscribed"]) == ("bybit", 803)
    assert bybit["instruments_listed"] == 805
    assert bybit["rejected"] == [
        {
            "topic": "allLiquidation.AUSDT",
            "reason": "error:handler not found,topic:allLiquidation.AUSDT",
        },
        {"topic": "B", "reason": "error:handler not found,topic:B"},
    ]
    bitmex = venues["bitmex"]  # no coverage record read yet
    assert (bitmex["instruments_listed"], bitmex["instruments_subscribed"]) == (None, None)
    assert (bitmex["rejected"], bitmex["wildcard"], bitmex["coverage_as_of"]) == ([], False, None)


def test_the_view_reads_the_coverage_records_the_collectors_write() -> None:
    """The contract from both ends: records made by the collectors' own pipeline (as they
    would go to Kafka, key = exchange) give the API's answer for the registry's feeds."""
    from stream.collectors.registry import FEEDS as REGISTRY
    from tests.collectors.test_shells import pipeline_for

    feeds = {name: (f.exchange, f.lower_bound, f.notes) for name, f in REGISTRY.items()}
    f = ViewFeeder(load_settings(), GlobalView(WINDOWS, feeds))
    bybit, bybit_records = pipeline_for(REGISTRY["bybit-linear"])
    refused = [{"topic": "allLiquidation.AUSDT", "reason": "error:handler not found"}]
    bybit.status("connected", url="ws://x")
    bybit.coverage(listed=805, subscribed=803, rejected=refused)
    binance, binance_records = pipeline_for(REGISTRY["binance-usdm"])
    binance.coverage(listed=420, subscribed=420, rejected=[], wildcard=True)
    for topic, record_key, record in (*bybit_records.records, *binance_records.records):
        assert (topic, record_key) == ("collectors.status", record["exchange"])
        f._apply(f.topics.status, record_key.encode(), orjson.dumps(record))
    assert f.unreadable == 0
    venues = {v["feed"]: v for v in f.view.query_coverage({}, NOW)["venues"]}
    assert venues["bybit-linear"]["state"] == "connected"
    assert venues["bybit-linear"]["instruments_listed"] == 805
    assert venues["bybit-linear"]["instruments_subscribed"] == 803
    assert venues["bybit-linear"]["rejected"] == refused
    assert (
        venues["binance-usdm"]["instruments_subscribed"],
        venues["binance-usdm"]["wildcard"],
    ) == (
        420,
        True,
    )


@pytest.mark.parametrize(
    "stray",
    [
        {"instruments_listed": "805"},
        {"instruments_subscribed": True},
        {"instruments_subscribed": None},
        {"instruments_listed": -1},
        {"instruments_listed": 8.5},
        {"rejected": None},
        {"rejected": "allLiquidation.X"},
        {"rejected": ["allLiquidation.X"]},
        {"rejected": [{"topic": "allLiquidation.X"}]},
        {"rejected": [{"topic": 7, "reason": "r"}]},
        {"wildcard": "yes"},
        {"ts": "1762300000000"},
        {"feed": 42},
        {"exchange": ["bybit"]},
    ],
)
def test_a_stray_coverage_record_is_skipped_and_breaks_nothing(stray: dict) -> None:
    f = feeder()
    good = coverage_record("okx", NOW, 310, 309, "liquidation-orders.X")
    f._apply(f.topics.status, b"okx", orjson.dumps(good))
    before = f.view.query_coverage({}, NOW)
    bad = coverage_record("bybit-linear", NOW + 1, 805, 803, "allLiquidation.X")
    f._apply(f.topics.status, b"bybit", orjson.dumps({**bad, **stray}))
    f._apply(f.topics.status, b"okx", orjson.dumps({**good, **stray}))
    assert f.unreadable == 2
    assert f.view.query_coverage({}, NOW) == before  # nothing half-taken, no feed added
    f._apply(f.topics.status, b"bybit", orjson.dumps(bad))  # and later ones are still read
    venues = {r["feed"]: r for r in f.view.query_coverage({}, NOW)["venues"]}
    assert venues["bybit-linear"]["instruments_subscribed"] == 803


def heartbeat_record(feed: str, ts: int, interval_s: float = 30.0, **more) -> dict:
    """A `heartbeat` status record as docs/events.md shows it."""
    record = coverage_record(feed, ts, 805, 803, "allLiquidation.AUSDT", wildcard=False)
    record.update(
        state="heartbeat",
        interval_s=interval_s,
        connected=True,
        connections=2,
        connections_up=2,
        last_frame_ts=ts - 126,
    )
    return {**record, **more}


def test_a_feed_without_heartbeats_for_three_intervals_is_stale() -> None:
    v = GlobalView(WINDOWS, FEEDS)
    v.add_status({"exchange": "okx", "feed": "okx", "state": "connected", "ts": NOW - 200_000})
    v.add_status(heartbeat_record("okx", NOW - 60_000, interval_s=30.0))
    v.add_status(heartbeat_record("okx", NOW - 90_000, interval_s=30.0))  # re-read: older

    def okx(now_ms: int) -> dict:
        return {r["feed"]: r for r in v.query_coverage({}, now_ms)["venues"]}["okx"]

    assert okx(NOW)["stale"] is False and okx(NOW)["heartbeat_as_of"] == NOW - 60_000
    assert okx(NOW + 30_000)["stale"] is False  # exactly 3 x 30 s: not yet
    late = okx(NOW + 30_001)  # killed with kill -9: no `disconnected`, the beats just stop
    assert late["stale"] is True and late["heartbeat_as_of"] == NOW - 60_000
    assert (late["state"], late["since"]) == ("connected", NOW - 200_000)  # kept as it was
    v.add_status(heartbeat_record("okx", NOW + 40_000, interval_s=5.0))  # back, a faster beat
    assert okx(NOW + 55_000)["stale"] is False
    assert okx(NOW + 55_001)["stale"] is True  # each record's own interval: 3 x 5 s


def test_a_feed_that_never_sent_a_heartbeat_is_never_stale() -> None:
    v = GlobalView(WINDOWS, FEEDS)
    v.add_status({"exchange": "okx", "feed": "okx", "state": "connected", "ts": NOW})
    venues = {r["feed"]: r for r in v.query_coverage({}, NOW + 10 * 86_400_000)["venues"]}
    for feed in ("okx", "bitmex", "binance-usdm"):
        assert (venues[feed]["stale"], venues[feed]["heartbeat_as_of"]) == (False, None)
    assert venues["okx"]["state"] == "connected"


def test_a_heartbeat_newer_than_the_coverage_refreshes_the_counts() -> None:
    v = GlobalView(WINDOWS, FEEDS)
    v.add_status(coverage_record("okx", NOW - 100, 300, 290, "liquidation-orders.X"))
    v.add_status(heartbeat_record("okx", NOW - 50))
    okx = {r["feed"]: r for r in v.query_coverage({}, NOW)["venues"]}["okx"]
    assert (okx["instruments_listed"], okx["instruments_subscribed"]) == (805, 803)
    assert okx["rejected"] == [
        {
            "topic": "allLiquidation.AUSDT",
            "reason": "error:handler not found,topic:allLiquidation.AUSDT",
        }
    ]
    assert okx["coverage_as_of"] == NOW - 50
    v.add_status(coverage_record("okx", NOW - 10, 310, 310))  # a later coverage record wins
    v.add_status(heartbeat_record("okx", NOW - 30))  # an older heartbeat does not undo it
    okx = {r["feed"]: r for r in v.query_coverage({}, NOW)["venues"]}["okx"]
    assert (okx["instruments_listed"], okx["instruments_subscribed"]) == (310, 310)
    assert (okx["coverage_as_of"], okx["heartbeat_as_of"]) == (NOW - 10, NOW - 30)


def test_the_view_reads_the_heartbeats_the_collectors_write() -> None:
    """The contract from both ends: a heartbeat made by the collectors' own connection (not
    running: its record at this moment) is read, and the feed goes stale 3 beats later."""
    from stream.collectors.connection import FeedConnection
    from stream.collectors.registry import FEEDS as REGISTRY
    from tests.collectors.test_shells import pipeline_for

    feeds = {name: (f.exchange, f.lower_bound, f.notes) for name, f in REGISTRY.items()}
    f = ViewFeeder(load_settings(), GlobalView(WINDOWS, feeds))
    pipeline, published = pipeline_for(REGISTRY["bybit-linear"])
    FeedConnection(pipeline, "ws://127.0.0.1:9", status_interval_s=12.5)._heartbeat()
    ((topic, record_key, record),) = published.records
    assert (topic, record["state"]) == ("collectors.status", "heartbeat")
    f._apply(f.topics.status, record_key.encode(), orjson.dumps(record))
    assert f.unreadable == 0
    ts = record["ts"]

    def bybit(now_ms: int) -> dict:
        return {v["feed"]: v for v in f.view.query_coverage({}, now_ms)["venues"]}["bybit-linear"]

    assert (bybit(ts)["stale"], bybit(ts)["heartbeat_as_of"]) == (False, ts)
    assert bybit(ts + 37_500)["stale"] is False
    assert bybit(ts + 37_501)["stale"] is True


@pytest.mark.parametrize(
    "stray",
    [
        {"interval_s": None},
        {"interval_s": "30"},
        {"interval_s": True},
        {"interval_s": 0},
        {"interval_s": -30.0},
        {"ts": None},
        {"ts": 1.5},
        {"instruments_listed": "805"},
        {"rejected": None},
        {"wildcard": "no"},
        {"feed": 42},
    ],
)
def test_a_stray_heartbeat_record_is_skipped_and_breaks_nothing(stray: dict) -> None:
    f = feeder()
    good = heartbeat_record("okx", NOW - 60_000)
    f._apply(f.topics.status, b"okx", orjson.dumps(good))
    before = f.view.query_coverage({}, NOW)
    f._apply(f.topics.status, b"okx", orjson.dumps({**heartbeat_record("okx", NOW), **stray}))
    bad = {**heartbeat_record("bybit-linear", NOW), **stray}
    f._apply(f.topics.status, b"bybit", orjson.dumps(bad))
    assert f.unreadable == 2
    assert f.view.query_coverage({}, NOW) == before  # nothing half-taken, no feed added
    assert f.view.query_coverage({}, NOW + 30_001)["venues"][-1]["stale"] is True
    f._apply(f.topics.status, b"bybit", orjson.dumps(heartbeat_record("bybit-linear", NOW)))
    venues = {r["feed"]: r for r in f.view.query_coverage({}, NOW)["venues"]}
    assert venues["bybit-linear"]["heartbeat_as_of"] == NOW  # and later ones are still read


@pytest.mark.parametrize(
    ("call", "params", "message"),
    [
        ("totals", {"window": "7m"}, "unknown window '7m'; one of 5m, 1h, 24h"),
        ("totals", {"coin": ""}, "an empty exchange or coin filter"),
        ("totals", {"exchange": "binanse"}, "unknown exchange 'binanse'; one of "),
        ("totals", {"symbol": "BTCUSDT"}, "unknown parameter 'symbol'"),
        ("breaches", {"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ("breaches", {"limit": "ten"}, "not 'ten'"),
        ("largest", {"window": "2h"}, "unknown window '2h'"),
        ("largest", {"limit": "101"}, "from 1 to 100"),
        ("coverage", {"feed": "okx"}, "unknown parameter 'feed'; this endpoint takes none"),
    ],
)
def test_bad_parameters_say_why(view: GlobalView, call: str, params: dict, message: str) -> None:
    with pytest.raises(BadRequest) as error:
        if call == "totals":
            view.query_totals(params, NOW)
        elif call == "breaches":
            view.query_breaches(params, NOW)
        elif call == "coverage":
            view.query_coverage(params, NOW)
        else:
            view.query_largest(params)
    assert message in str(error.value)


def feeder() -> ViewFeeder:
    return ViewFeeder(load_settings(), GlobalView(WINDOWS, FEEDS))


def test_records_the_view_cannot_read_are_skipped_not_fatal() -> None:
    f = feeder()
    topics = f.topics
    good = totals("okx", "BTC", "24h")
    for topic, record_key, value in [
        (topics.status, b"okx", b'{"feed": "okx", "state": "gap"}'),  # no gap_start
        (topics.totals, b"*:*:24h", b"[1, 2]"),  # JSON, not an object
        (topics.breaches, b"r", b'"a string"'),
        (topics.totals, b"x", b'{"count": 1}'),  # an object, not a totals record
        (topics.breaches, b"r", b'{"rule": "r", "state": "breach", "ts": "5"}'),
        (topics.totals, b"*:*:24h", b"{not json"),
        (topics.totals, key(good).encode(), orjson.dumps(good)),
    ]:
        f._apply(topic, record_key, value)
    assert f.unreadable == 6
    assert f.view.query_totals({"coin": "BTC"}, NOW)["totals"] == [good]
    breach = {"rule": "r", "state": "breach", "ts": NOW, "exchange": None, "coin": None}
    f._apply(topics.breaches, b"r", orjson.dumps({**breach, "event_id": None}))
    assert f.view.query_breaches({}, NOW)["breaches"] == [{**breach, "event_id": None}]
