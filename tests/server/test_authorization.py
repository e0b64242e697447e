"""Every route x every scope x no key x a revoked key, generated from the OpenAPI document.

A route that does not declare its scopes (``x-certvigil-scopes``) fails the first test,
so a new route cannot escape the matrix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from certvigil.config.loading import LoadedConfig
from certvigil.server.app import create_app
from certvigil.server.auth import SCOPES_EXTENSION
from certvigil.server.keys import Scope
from certvigil.store import Store
from certvigil.store import server_queries as sq
from tests.server.conftest import make_key
from tests.support.live_app import serve_app

_SAMPLE_PATH_VALUES = {"sha256": "0" * 64, "alert_id": "1", "endpoint_id": "1"}


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in sorted(doc["paths"].items()):
        for method, operation in sorted(item.items()):
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


Live = tuple[str, dict[str, str], dict[str, Any]]


@pytest.fixture
def live(server_loaded: LoadedConfig, server_store: Store) -> Iterator[Live]:
    """A server with a key per scope and a revoked admin key, and its OpenAPI document."""
    keys = {scope.value: make_key(server_store, f"k-{scope.value}", scope) for scope in Scope}
    keys["revoked"] = make_key(server_store, "gone", Scope.ADMIN)
    with server_store.write() as connection:
        assert sq.revoke_api_key(connection, "gone", now=datetime.now(UTC))
    app = create_app(server_loaded, server_store, background=False)
    with serve_app(app) as url:
        document = httpx.get(f"{url}/api/v1/openapi.json").json()
        yield url, keys, document


def test_every_operation_declares_its_scopes(live: Live) -> None:
    """Each route of the document names the scopes it accepts, from the known ones."""
    operations = list(_operations(live[2]))
    assert len(operations) >= 18
    for path, method, operation in operations:
        scopes = operation.get(SCOPES_EXTENSION)
        assert scopes, f"{method.upper()} {path} declares no scopes"
        assert set(scopes) <= {s.value for s in Scope}


def test_the_authorization_matrix_holds_for_every_route(live: Live) -> None:
    """No key, a malformed key and a revoked key get 401; a scope the route does not
    accept gets 403; an accepted one gets past authorization (anything but 401/403)."""
    url, keys, document = live
    results: list[str] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for path, method, operation in _operations(document):
            concrete = re.sub(r"\{(\w+)\}", lambda m: _SAMPLE_PATH_VALUES[m.group(1)], path)
            allowed = set(operation[SCOPES_EXTENSION])
            cases: list[tuple[str, dict[str, str], set[int]]] = [
                ("no key", {}, {401}),
                ("malformed key", {"X-API-Key": "cvk_not_a_key"}, {401}),
                ("revoked key", {"Authorization": f"Bearer {keys['revoked']}"}, {401}),
            ]
            for scope in Scope:
                forbidden = scope.value not in allowed
                cases.append(
                    (scope.value, {"X-API-Key": keys[scope.value]}, {403} if forbidden else set())
                )
            for label, headers, expected in cases:
                # A body that fails validation: an allowed scope must still pass auth first.
                response = client.request(
                    method.upper(), concrete, headers=headers, json={} if method == "post" else None
                )
                status = response.status_code
                ok = status in expected if expected else status not in (401, 403)
                if not ok:
                    results.append(
                        f"{method.upper()} {path} [{label}]: {status} {response.text[:120]}"
                    )
                if status in (401, 403):
                    assert response.json()["error"]["code"] in ("unauthorized", "forbidden")
    assert results == []
