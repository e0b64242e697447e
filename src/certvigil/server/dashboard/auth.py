"""Dashboard log-in: argon2 password hashes, session tokens, CSRF tokens, throttling.

A session is a random 256-bit token in a cookie (``HttpOnly``, ``SameSite=Strict``,
``Secure`` over TLS); the database keeps only its SHA-256, so a copy of the database
lets no one in. Every form carries the session's CSRF token; the log-in form, which has
no session yet, carries a token that must match a cookie set with the form (the
double-submit pattern). Failed log-ins are counted per user name and per client
address in the database, so every server worker sees the same counts; behind a reverse
proxy the client address is the proxy's ``X-Forwarded-For`` only when the proxy is in
``serve.trusted_proxies`` (``server/proxies.py``).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from certvigil.server.proxies import IpNetwork

SESSION_COOKIE = "certvigil_session"
LOGIN_CSRF_COOKIE = "certvigil_login_csrf"
CSRF_FIELD = "csrf_token"

MAX_PASSWORD_CHARS = 1024
"""Longer passwords are refused before hashing (argon2 would hash them, slowly)."""

MAX_NAME_CHARS = 100

_HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    # Compared against when the user does not exist, so that a wrong name costs the
    # same time as a wrong password and does not reveal which names exist.
    return _HASHER.hash(secrets.token_urlsafe(16))


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardSettings:
    """How the dashboard behaves.

    Attributes:
        session_lifetime: How long a log-in lasts.
        secure_cookies: ``True`` to mark cookies ``Secure``, ``False`` not to, ``None``
            to decide per request (``Secure`` when the request came over https).
        login_failures_per_user: Failed log-ins for one name before it is refused for
            the rest of the window.
        login_failures_per_address: The same for one client address.
        login_window: The counting window.
        clock: The time source (aware UTC).
        trusted_proxies: Reverse proxies whose ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` are believed (``serve.trusted_proxies``,
            ``server/proxies.py``); from anyone else they are ignored.
    """

    session_lifetime: timedelta = timedelta(hours=8)
    secure_cookies: bool | None = None
    login_failures_per_user: int = 5
    login_failures_per_address: int = 20
    login_window: timedelta = timedelta(minutes=15)
    clock: Callable[[], datetime] = field(default=_utc_now)
    trusted_proxies: tuple[IpNetwork, ...] = ()


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (a PHC string with salt and parameters).

    Raises:
        ValueError: The password is empty or longer than ``MAX_PASSWORD_CHARS``.
    """
    check_password_rules(password)
    return _HASHER.hash(password)


def check_password_rules(password: str) -> None:
    """Raises ``ValueError`` naming the rule a new password breaks."""
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (``None``: no such user, still slow)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return (
            _HASHER.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _HASHER.check_needs_rehash(password_hash)


def new_token() -> str:
    """A random 256-bit token, URL-safe."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """The SHA-256 hex of a session token, as stored."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def tokens_match(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of two tokens; ``False`` if either is missing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "replace"), given.encode("utf-8", "replace")
    )


def throttle_keys(user_name: str, client_address: str) -> tuple[str, str]:
    """The throttle rows a log-in attempt counts against."""
    return (f"user:{user_name.lower()[:MAX_NAME_CHARS]}", f"addr:{client_address[:64]}")
