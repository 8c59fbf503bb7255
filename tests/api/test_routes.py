"""The API handlers without a server: /api/totals answers what the view holds, also once its
encoded answer is cached, and a new record shows at once."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import make_mocked_request

from stream.config import load_settings
from stream.view.consumer import ViewFeeder
from stream.view.routes import OPENAPI, ApiRoutes
from stream.view.state import GlobalView
from tests.api.test_openapi import answer_schema, conforms
from tests.api.test_view import FEEDS, WINDOWS, key, totals


async def get_totals(routes: ApiRoutes, query: str) -> tuple[int, dict]:
    response = await routes.totals(make_mocked_request("GET", f"/api/totals?{query}"))
    assert response.body is not None
    return response.status, orjson.loads(response.body)  # type: ignore[arg-type]


async def test_totals_answers_stay_exact_across_the_cache() -> None:
    feeder = ViewFeeder(load_settings(), GlobalView(WINDOWS, FEEDS))
    routes = ApiRoutes(feeder)
    market, btc = totals(None, None, "24h", 2), totals(None, "BTC", "24h", 1)
    for record in (market, btc):
        feeder.view.add_totals(key(record), record)
    for _ in range(2):  # the second from the cache
        status, body = await get_totals(routes, "coin=all&window=24h")
        assert status == 200 and body["totals"] == [market]
        assert body["windows"] == list(WINDOWS) and isinstance(body["as_of"], int)
    newer = totals(None, None, "24h", 3)
    feeder.view.add_totals(key(newer), newer)
    assert (await get_totals(routes, "coin=all&window=24h"))[1]["totals"] == [newer]
    _, everything = await get_totals(routes, "")
    expected = feeder.view.query_totals({}, 0)
    assert everything["totals"] == expected["totals"] == [newer, btc]
    status, body = await get_totals(routes, "window=7m")
    assert status == 400 and "unknown window '7m'" in body["error"]


async def test_history_says_it_is_loading_until_its_topic_was_read() -> None:
    """After a start the history topic is read last: until then /api/history is a 503 with
    Retry-After (an answer from part of the topic would show intervals short), as documented."""
    feeder = ViewFeeder(load_settings(), GlobalView(WINDOWS, FEEDS))
    routes = ApiRoutes(feeder)
    request = make_mocked_request("GET", "/api/history?interval=1h")
    loading = await routes.history(request)
    assert loading.status == 503 and int(loading.headers["Retry-After"]) > 0
    assert loading.body is not None
    body = orjson.loads(loading.body)  # type: ignore[arg-type]
    assert body["loading"] is True and "loading" in body["error"]
    spec = orjson.loads(OPENAPI.read_bytes())
    conforms(spec, answer_schema(spec, "/api/history", "503"), body, "/api/history")
    feeder.history.settle(0)  # the history topic read to its end
    answer = await routes.history(request)
    assert answer.status == 200
    assert answer.body is not None
    assert orjson.loads(answer.body)["interval"] == "1h"  # type: ignore[arg-type]
