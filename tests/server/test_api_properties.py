"""Property-based requests built from the OpenAPI document: no input gets a 500.

For every operation, hypothesis draws path parameters, query parameters and
JSON bodies from the schemas the document publishes; the server must answer each with
a status below 500 and, for errors, the JSON error document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certvigil.config.loading import LoadedConfig
from certvigil.server.app import create_app
from certvigil.server.keys import Scope
from certvigil.store import Store
from tests.server.conftest import make_key
from tests.server.schema_strategies import from_schema
from tests.support.live_app import serve_app

pytestmark = pytest.mark.slow


def inline_refs(node: Any, components: dict[str, Any], depth: int = 0) -> Any:
    """The schema with every ``#/components/schemas/...`` reference replaced by its target."""
    if depth > 20:
        raise ValueError("schema nests too deep (a recursive reference?)")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            return inline_refs(components[ref.rsplit("/", 1)[1]], components, depth + 1)
        return {k: inline_refs(v, components, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, components, depth) for v in node]
    return node


def request_strategy(operation: dict[str, Any], components: dict[str, Any]) -> Any:
    """Draws ``(path parameters, query parameters, body)`` for an operation."""
    groups: dict[str, dict[str, Any]] = {"path": {}, "query": {}}
    required: dict[str, list[str]] = {"path": [], "query": []}
    for parameter in operation.get("parameters", []):
        where = parameter["in"]
        if where not in groups:
            continue
        groups[where][parameter["name"]] = inline_refs(parameter["schema"], components)
        if parameter.get("required"):
            required[where].append(parameter["name"])

    def group(where: str) -> Any:
        return from_schema(
            {"type": "object", "properties": groups[where], "required": required[where]},
            stray=False,
        )

    body: Any = st.none()
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = inline_refs(content["application/json"]["schema"], components)
        body = st.one_of(from_schema(schema), st.none())
    path_values: Any = group("path")
    return st.tuples(path_values, group("query"), body)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """A server with an admin key, and its OpenAPI document."""
    from certvigil.config.loading import load_config
    from certvigil.store import open_store
    from tests.server.conftest import write_server_config

    directory = tmp_path_factory.mktemp("fuzz")
    url = f"sqlite:///{directory / 'server.db'}"
    loaded: LoadedConfig = load_config(write_server_config(directory, url))
    store: Store = open_store(url)
    key = make_key(store, "fuzzer", Scope.ADMIN)
    try:
        with serve_app(create_app(loaded, store, background=False)) as base:
            document = httpx.get(f"{base}/api/v1/openapi.json").json()
            yield base, key, document
    finally:
        store.close()


def _operations() -> list[tuple[str, str]]:
    from certvigil.config.model import Config  # noqa: F401 - the document needs no database

    return [
        ("/api/v1/reports", "post"),
        ("/api/v1/agents/me/targets", "get"),
        ("/api/v1/certificates", "get"),
        ("/api/v1/certificates/{sha256}", "get"),
        ("/api/v1/endpoints", "get"),
        ("/api/v1/endpoints/{endpoint_id}/history", "get"),
        ("/api/v1/changes", "get"),
        ("/api/v1/alerts", "get"),
        ("/api/v1/alerts/{alert_id}/acknowledge", "post"),
        ("/api/v1/alerts/{alert_id}/resolve", "post"),
        ("/api/v1/agents", "get"),
        ("/api/v1/scans", "post"),
        ("/api/v1/status", "get"),
        ("/api/v1/alerts/stream", "get"),
        ("/api/sslscout/report", "post"),
        ("/api/sslscout/certificates", "get"),
        ("/api/sslscout/alerts", "get"),
        ("/api/sslscout/alerts/{alert_id}/acknowledge", "post"),
        ("/metrics", "get"),
    ]


def test_the_list_of_operations_is_the_documents(live: tuple[str, str, dict[str, Any]]) -> None:
    """The operations below are every operation of the document (a new one must join)."""
    _base, _key, document = live
    published = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert published == set(_operations())


@pytest.mark.parametrize(("path", "method"), _operations())
def test_no_generated_request_gets_a_server_error(
    live: tuple[str, str, dict[str, Any]], path: str, method: str
) -> None:
    """Requests drawn from the operation's schemas are answered below 500."""
    base, key, document = live
    operation = document["paths"][path][method]
    components = document.get("components", {}).get("schemas", {})
    client = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60)

    @settings(
        max_examples=25,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        deadline=None,
    )
    @given(request_strategy(operation, components))
    def check(drawn: tuple[dict[str, Any], dict[str, Any], Any]) -> None:
        path_values, query, body = drawn
        concrete = re.sub(r"\{(\w+)\}", lambda m: str(path_values[m.group(1)]), path)
        response = client.request(
            method.upper(),
            concrete,
            params={k: v for k, v in query.items() if v is not None},
            json=body,
        )
        assert response.status_code < 500, (concrete, query, body, response.text[:300])
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}

    try:
        check()
    finally:
        client.close()
