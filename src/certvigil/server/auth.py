"""Who a request acts as: API keys in ``X-API-Key`` or ``Authorization: Bearer``.

Routes declare the scopes they accept with :func:`require`; the declaration is also
written into the OpenAPI document (``x-certvigil-scopes``), from which the test suite
builds its authorization matrix, so a new route cannot escape it.

A dashboard (or any other front end mounted on the app) may authenticate its own way
(a session cookie) and put a :class:`~certvigil.server.keys.Principal` into the
request's state as ``principal`` before the route runs; it is used as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from certvigil.server.errors import ApiError
from certvigil.server.keys import Principal, Scope, verify_token
from certvigil.store import Store

SCOPES_EXTENSION = "x-certvigil-scopes"
"""OpenAPI operation extension listing the scopes a route accepts."""


def token_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries, ``None`` when it carries none."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(connection: HTTPConnection) -> Principal:
    """The principal of a request or WebSocket.

    Raises:
        ApiError: 401 without a key, or with a malformed, unknown or revoked one.
    """
    given = connection.scope.get("state", {}).get("principal")
    if isinstance(given, Principal):
        return given
    token = token_from_headers(connection.headers)
    if token is None:
        raise ApiError(401, "unauthorized", "an API key is required (X-API-Key or Bearer)")
    store: Store = connection.app.state.store
    principal = verify_token(store, token)
    if principal is None:
        raise ApiError(401, "unauthorized", "the API key is not valid")
    return principal


def check_scope(principal: Principal, allowed: frozenset[Scope]) -> None:
    """Refuses a principal whose scope the route does not accept.

    Raises:
        ApiError: 403, naming the scopes that would do.
    """
    if principal.scope not in allowed:
        wanted = sorted(s.value for s in allowed)
        raise ApiError(
            403,
            "forbidden",
            f"scope {principal.scope.value!r} may not use this route; "
            f"it needs {' or '.join(wanted)}",
            {"needed": wanted, "scope": principal.scope.value},
        )


def require(*scopes: Scope) -> Callable[..., Principal]:
    """A dependency returning the principal when its scope is one of ``scopes``."""
    allowed = frozenset(scopes)

    def dependency(request: Request) -> Principal:
        principal = authenticate(request)
        check_scope(principal, allowed)
        return principal

    return dependency


def scoped(*scopes: Scope) -> dict[str, Any]:
    """Route keyword arguments: the scope check and its OpenAPI record."""
    return {
        "dependencies": [Depends(require(*scopes))],
        "openapi_extra": {SCOPES_EXTENSION: sorted(s.value for s in scopes)},
    }


READERS = (Scope.READ, Scope.ADMIN)
"""Scopes that read the inventory, alerts and agents."""
AGENTS_ONLY = (Scope.AGENT, Scope.ADMIN)
"""Scopes that report observations."""
ADMINS = (Scope.ADMIN,)
"""Scopes that change things."""
