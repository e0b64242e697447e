"""API keys: scopes, token format, creation, verification in constant time.

A token is ``cvk_`` + a 12-character lookup id + ``_`` + 43 characters of secret, both
URL-safe base64 of random bytes (72 + 256 bits). The server keeps the lookup id and the
SHA-256 of the whole token; it finds the row by the lookup id and compares the hashes
with :func:`hmac.compare_digest`, so the time a check takes does not depend on how much
of a guess was right. The token is shown once, when it is made.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from certvigil.errors import UsageError
from certvigil.store import Store
from certvigil.store import server_queries as sq

TOKEN_PREFIX = "cvk_"
"""Every certvigil API key starts with this, so a leaked one is recognisable."""

_LOOKUP_BYTES = 9
_SECRET_BYTES = 32
_TOKEN_RE = re.compile(r"^cvk_([A-Za-z0-9_-]{12})_([A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_TOKEN_CHARS = 200
"""Longer header values are refused before any work is done on them."""


class Scope(StrEnum):
    """What a key may do.

    ``agent`` reports observations and reads its own assigned targets; ``read`` reads
    the inventory, alerts and the stream; ``admin`` does everything, including
    acknowledging and resolving alerts and asking for scans.
    """

    AGENT = "agent"
    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """Who a request acts as.

    Attributes:
        name: The key's (or, for dashboard sessions, the user's) name.
        scope: What it may do.
        key_id: The API key's row id, ``None`` for a dashboard session.
    """

    name: str
    scope: Scope
    key_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewKey:
    """A key just made: the token exists only here and on the operator's screen.

    Attributes:
        id: Row id.
        name: Its name.
        scope: Its scope.
        token: The secret token.
    """

    id: int
    name: str
    scope: Scope
    token: str


def hash_token(token: str) -> str:
    """SHA-256 of a token, hex."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def check_key_name(name: str) -> str:
    """Validates a key name (letters, digits, ``. _ -``, at most 100).

    Raises:
        UsageError: The name breaks the rule.
    """
    if not _NAME_RE.match(name):
        raise UsageError(
            f"key name {name!r}: use 1 to 100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def create_key(store: Store, *, name: str, scope: Scope, now: datetime) -> NewKey:
    """Makes a key and stores its hash.

    Raises:
        UsageError: The name is invalid or taken.
    """
    check_key_name(name)
    lookup = secrets.token_urlsafe(_LOOKUP_BYTES)
    token = f"{TOKEN_PREFIX}{lookup}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    with store.write() as connection:
        if sq.api_key_by_name(connection, name) is not None:
            raise UsageError(f"key name {name!r} is taken; revoke it or pick another")
        key_id = sq.insert_api_key(
            connection,
            name=name,
            scope=scope.value,
            lookup=lookup,
            key_hash=hash_token(token),
            now=now,
        )
    return NewKey(id=key_id, name=name, scope=scope, token=token)


def verify_token(store: Store, token: str) -> Principal | None:
    """The principal a token stands for; ``None`` for a malformed, unknown or revoked one."""
    if len(token) > MAX_TOKEN_CHARS:
        return None
    match = _TOKEN_RE.match(token)
    if match is None:
        return None
    with store.read() as connection:
        record = sq.api_key_by_lookup(connection, match.group(1))
    if record is None:
        # Compare anyway, so an unknown lookup id costs the same as a wrong secret.
        hmac.compare_digest(hash_token(token), "0" * 64)
        return None
    if not hmac.compare_digest(hash_token(token), record.key_hash):
        return None
    if record.revoked_at_utc is not None:
        return None
    return Principal(name=record.name, scope=Scope(record.scope), key_id=record.id)
