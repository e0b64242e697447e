"""Who a request acts as: API keys in ``X-API-Key`` or ``Authorization: Bearer``.

Routes declare the scopes they accept with :func:`require`; the declaration is also
written into the OpenAPI document (``x-certvigil-scopes``), from which the test suite
builds its authorization matrix, so a new route cannot escape it.

A dashboard (or any other front end mounted on the app) may authenticate its own way
(a session cookie) and put a :class:`~certvigil.server.keys.Principal` into the
request's state as ``principal`` before the route runs; it is used as it is.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool
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


AUTH_CACHE_S = 1.0
"""How long a verified key is taken as valid without asking the database again."""


class PrincipalCache:
    """Keys verified in the last :data:`AUTH_CACHE_S`, by the SHA-256 of the token.

    Every request to the API carries a key, and verifying it is a database read: in a
    worker thread, a hop that costs more than the rest of a cached answer on a busy
    machine. A key verified less than a second ago is taken as still valid, so a
    revocation (``certvigil keys revoke``) takes effect within a second, the same
    freshness as the inventory lists. Only successes are kept: a wrong, unknown or
    revoked key is looked up every time.
    """

    def __init__(self, *, ttl_s: float = AUTH_CACHE_S, size: int = 1024) -> None:
        self._ttl_s = ttl_s
        self._size = size
        self._entries: dict[bytes, tuple[float, Principal]] = {}

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()

    def get(self, token: str) -> Principal | None:
        """The principal of a key verified within the time-to-live, else ``None``."""
        entry = self._entries.get(self._key(token))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, principal: Principal) -> None:
        """Remembers a verified key."""
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[self._key(token)] = (time.monotonic() + self._ttl_s, principal)


async def authenticate_async(connection: HTTPConnection) -> Principal:
    """:func:`authenticate` for the event loop: a key verified within
    :data:`AUTH_CACHE_S` is taken from the app's :class:`PrincipalCache`, any other is
    verified in a worker thread.

    Raises:
        ApiError: 401 without a key, or with a malformed, unknown or revoked one.
    """
    given = connection.scope.get("state", {}).get("principal")
    if isinstance(given, Principal):
        return given
    token = token_from_headers(connection.headers)
    if token is None:
        raise ApiError(401, "unauthorized", "an API key is required (X-API-Key or Bearer)")
    cache = getattr(connection.app.state, "principals", None)
    if isinstance(cache, PrincipalCache):
        principal = cache.get(token)
        if principal is not None:
            return principal
    store: Store = connection.app.state.store
    principal = await run_in_threadpool(verify_token, store, token)
    if principal is None:
        raise ApiError(401, "unauthorized", "the API key is not valid")
    if isinstance(cache, PrincipalCache):
        cache.put(token, principal)
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


def require(*scopes: Scope) -> Callable[..., Awaitable[Principal]]:
    """A dependency returning the principal when its scope is one of ``scopes``."""
    allowed = frozenset(scopes)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate_async(request)
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
