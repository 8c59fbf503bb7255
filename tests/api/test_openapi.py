"""The OpenAPI document: valid, complete (every route the worker serves), and describing the
answers the view really gives."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stream.config import load_settings
from stream.view.state import GlobalView
from stream.worker.service import build_worker
from stream.worker.web import OPENAPI
from tests.api.test_view import (
    FEEDS,
    NOW,
    WINDOWS,
    coverage_record,
    heartbeat_record,
    key,
    largest,
    totals,
)

# Faust's own blueprints (key routing between workers, table browsing), not our API.
FAUST_BUILT_INS = ("/router", "/table", "/graph", "/stats", "/assignment")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return json.loads(OPENAPI.read_text())


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    assert ref.startswith("#/"), ref
    target: Any = spec
    for part in ref[2:].split("/"):
        target = target[part]
    return target


JSON_TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
}


def conforms(spec: dict[str, Any], schema: dict[str, Any], value: Any, where: str = "$") -> None:
    """The subset of JSON Schema the document uses: type, enum, required, properties, items."""
    schema = resolve(spec, schema)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(
            isinstance(value, JSON_TYPES[t]) and not (t != "boolean" and isinstance(value, bool))
            for t in types
        )
        assert ok, f"{where}: {value!r} is not {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if isinstance(value, dict):
        for name in schema.get("required", []):
            assert name in value, f"{where}: {name} missing"
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                conforms(spec, sub, value[name], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            conforms(spec, schema["items"], item, f"{where}[{i}]")


def answer_schema(spec: dict[str, Any], path: str, status: str = "200") -> dict[str, Any]:
    response = spec["paths"][path]["get"]["responses"][status]
    return response["content"]["application/json"]["schema"]


def test_a_valid_openapi_3_1_document(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"] and spec["info"]["version"]
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    for ref in refs:
        resolve(spec, {"$ref": ref})  # raises KeyError when dangling
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert method in {"get", "post", "put", "delete", "patch"}, (path, method)
            assert operation["responses"], (path, method)


def test_documents_exactly_the_routes_the_worker_serves(spec: dict[str, Any]) -> None:
    app, _ = build_worker(load_settings())
    app.web.blueprints.apply(app.web)  # what the running server adds at start
    served = {resource.canonical for resource in app.web.web_app.router.resources()}
    assert not [path for path in served if path.startswith(FAUST_BUILT_INS)]  # switched off
    assert served == set(spec["paths"])


def test_the_view_answers_as_documented(spec: dict[str, Any]) -> None:
    view = GlobalView(WINDOWS, FEEDS)
    for record in (
        totals(None, None, "24h", 2, 500.0, largest(1, 400.0)),
        totals("binance", "BTC", "24h", 1, 400.0, largest(1, 400.0)),
        totals("okx", None, "5m", 1, 100.0),
    ):
        view.add_totals(key(record), record)
    view.add_breach(
        {
            "rule": "r",
            "state": "breach",
            "metric": "total_usd",
            "window": "24h",
            "exchange": None,
            "coin": "BTC",
            "value": 500.0,
            "threshold": 100,
            "ts": NOW,
            "event_id": "e1",
        }
    )
    view.add_status({"exchange": "okx", "feed": "okx", "state": "connected", "ts": NOW})
    view.add_status(
        {
            "exchange": "okx",
            "feed": "okx",
            "state": "gap",
            "ts": NOW,
            "gap_start": NOW - 5,
            "gap_end": NOW - 1,
        }
    )
    view.add_status(coverage_record("okx", NOW, 310, 309, "liquidation-orders.X"))
    view.add_status(coverage_record("binance-usdm", NOW, 420, 420, wildcard=True))
    view.add_status(heartbeat_record("okx", NOW - 100_000))  # stale by NOW: both forms answered
    view.add_status(heartbeat_record("binance-usdm", NOW))
    answers = {
        "/api/totals": view.query_totals({}, NOW),
        "/api/breaches": view.query_breaches({}, NOW),
        "/api/largest": view.query_largest({}),
        "/api/coverage": view.query_coverage({}, NOW),
    }
    for path, answer in answers.items():
        assert any(answer.values()), path  # something to check
        conforms(spec, answer_schema(spec, path), answer, path)
    for path in answers:
        conforms(spec, answer_schema(spec, path, "400"), {"error": "why"}, path)


def test_every_coverage_field_is_documented(spec: dict[str, Any]) -> None:
    """A feed with a coverage record and one without: the same fields, each documented."""
    view = GlobalView(WINDOWS, FEEDS)
    view.add_status(coverage_record("bybit-linear", NOW, 805, 803, "allLiquidation.A"))
    view.add_status(heartbeat_record("okx", NOW))
    venue = resolve(spec, answer_schema(spec, "/api/coverage"))["properties"]["venues"]["items"]
    answered = view.query_coverage({}, NOW)["venues"]
    assert {v["feed"] for v in answered} == {*FEEDS, "bybit-linear"}
    for feed in answered:
        assert set(feed) == set(venue["properties"]) == set(venue["required"]), feed["feed"]
