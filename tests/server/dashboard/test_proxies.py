"""Behind a reverse proxy: X-Forwarded-For and -Proto count only from serve.trusted_proxies."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from certvigil.config.loading import load_config
from certvigil.errors import ConfigError
from certvigil.server.dashboard.auth import LOGIN_CSRF_COOKIE, DashboardSettings
from certvigil.server.proxies import (
    MAX_FORWARDED_CHARS,
    client_address,
    forwarded_scheme,
    parse_trusted_proxies,
)
from certvigil.store import Store
from tests.server.dashboard.support import client_for, log_in, make_app
from tests.store.factories import NOW

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def _run(
    store: Store,
    settings: DashboardSettings,
    scenario: Callable[[httpx.AsyncClient], Awaitable[Any]],
) -> Any:
    # The in-process client connects from 127.0.0.1 (tests/server/dashboard/support.py).
    async def main() -> Any:
        async with client_for(make_app(store, settings)) as client:
            return await scenario(client)

    return asyncio.run(main())


async def _fail_from(client: httpx.AsyncClient, forwarded: str, count: int) -> list[int]:
    codes = []
    for i in range(count):
        client.headers["X-Forwarded-For"] = forwarded
        codes.append((await log_in(client, name=f"user{i}", password="x" * 9)).status_code)
    return codes


def test_forwarded_for_from_an_untrusted_peer_is_ignored(seeded_store) -> None:
    """Without trusted proxies a new X-Forwarded-For per try escapes nothing: the
    connection's address is counted, and the fourth try is refused."""
    store, _ = seeded_store
    settings = DashboardSettings(clock=lambda: NOW, login_failures_per_address=3)

    async def scenario(client: httpx.AsyncClient) -> list[int]:
        codes = []
        for i in range(3):
            codes += await _fail_from(client, f"198.51.100.{i}", 1)
        client.headers["X-Forwarded-For"] = "198.51.100.99"
        codes.append((await log_in(client)).status_code)
        return codes

    assert _run(store, settings, scenario) == [401, 401, 401, 429]


def test_a_trusted_proxy_names_the_client_counted(seeded_store) -> None:
    """Behind a trusted proxy each client has its own count; what a client writes to the
    left of the address its proxy appended is not believed."""
    store, _ = seeded_store
    settings = DashboardSettings(
        clock=lambda: NOW, login_failures_per_address=3, trusted_proxies=LOOPBACK
    )

    async def scenario(client: httpx.AsyncClient) -> list[int]:
        codes = await _fail_from(client, "203.0.113.5", 3)
        # The blocked client pretends to be someone else: the proxy appended its address.
        client.headers["X-Forwarded-For"] = "203.0.113.6, 203.0.113.5"
        codes.append((await log_in(client)).status_code)
        # Another client behind the same proxy is not blocked.
        client.headers["X-Forwarded-For"] = "203.0.113.6"
        codes.append((await log_in(client)).status_code)
        return codes

    assert _run(store, settings, scenario) == [401, 401, 401, 429, 303]


def _cookie_is_secure(store: Store, settings: DashboardSettings) -> bool:
    """Whether the log-in form's cookie, asked for with X-Forwarded-Proto: https, is
    Secure (the session cookie follows the same rule, ``router.secure``)."""

    async def scenario(client: httpx.AsyncClient) -> bool:
        response = await client.get("/dashboard/login", headers={"X-Forwarded-Proto": "https"})
        assert response.status_code == 200
        (cookie,) = [
            c for c in response.headers.get_list("set-cookie") if c.startswith(LOGIN_CSRF_COOKIE)
        ]
        return "secure" in cookie.lower()

    return bool(_run(store, settings, scenario))


def test_forwarded_proto_marks_cookies_secure_only_from_a_trusted_proxy(seeded_store) -> None:
    """A TLS-terminating proxy's "https" makes the cookies Secure; anyone else's header
    changes nothing."""
    store, _ = seeded_store
    assert _cookie_is_secure(store, DashboardSettings(clock=lambda: NOW, trusted_proxies=LOOPBACK))
    assert not _cookie_is_secure(store, DashboardSettings(clock=lambda: NOW))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("192.0.2.9", ["198.51.100.1"], "192.0.2.9"),  # peer not trusted
        ("127.0.0.1", [], "127.0.0.1"),  # trusted peer, no header
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1, 127.0.0.5"], "198.51.100.1"),  # two proxies
        ("127.0.0.1", ["10.9.9.9, 198.51.100.1", "127.0.0.5"], "198.51.100.1"),  # two headers
        ("127.0.0.1", ["127.0.0.7, 127.0.0.5"], "127.0.0.7"),  # all trusted: the leftmost
        ("127.0.0.1", ["198.51.100.1, nonsense"], "127.0.0.1"),  # garbage from the proxy
        ("127.0.0.1", ["nonsense, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1:5555"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # IPv4-mapped peer
        (None, ["198.51.100.1"], "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    """The rightmost address that is not a trusted proxy is the client."""
    assert client_address(peer, forwarded, LOOPBACK) == expected


def test_a_huge_header_is_read_from_its_right_end_only() -> None:
    """Only the last MAX_FORWARDED_CHARS characters are read; the client is still found."""
    forwarded = ", ".join(["10.0.0.1"] * (MAX_FORWARDED_CHARS // 4)) + ", 198.51.100.1"
    assert client_address("127.0.0.1", [forwarded], LOOPBACK) == "198.51.100.1"
    padded = "198.51.100.2, " + ", ".join(["127.0.0.9"] * MAX_FORWARDED_CHARS)
    # Every address read is a trusted proxy: the leftmost of those read, not the cut one.
    assert client_address("127.0.0.1", [padded], LOOPBACK) == "127.0.0.9"


def test_forwarded_scheme() -> None:
    """X-Forwarded-Proto is taken from a trusted peer only, and only http or https."""
    assert forwarded_scheme("127.0.0.1", "http", "https", LOOPBACK) == "https"
    assert forwarded_scheme("192.0.2.9", "http", "https", LOOPBACK) == "http"
    assert forwarded_scheme("127.0.0.1", "http", "gopher", LOOPBACK) == "http"
    assert forwarded_scheme("127.0.0.1", "http", "http, https", LOOPBACK) == "https"


def test_trusted_proxies_must_be_blocks(tmp_path: Path) -> None:
    """A bad entry is a configuration error naming it; good ones parse."""
    path = tmp_path / "server.yaml"
    path.write_text(
        yaml.safe_dump({"serve": {"trusted_proxies": ["10.0.0.0/8", "proxy.lan"]}}),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"proxy\.lan"):
        load_config(path)
    assert parse_trusted_proxies(["10.0.0.0/8", "::1"]) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
