"""API keys: made once, stored hashed, compared whole, revoked for good."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from certvigil.server.keys import TOKEN_PREFIX, Scope, create_key, verify_token
from certvigil.store import open_store
from tests.server.conftest import write_server_config


def certvigil(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "certvigil", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_keys_create_prints_the_key_alone_and_stores_only_its_hash(tmp_path: Path) -> None:
    """stdout is the key and a newline; the database file does not contain it."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    config = write_server_config(tmp_path, url)
    made = certvigil(
        "keys", "create", "--config", str(config), "--name", "lab-a", "--scope", "agent"
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.removesuffix("\n")
    assert "\n" not in token and token.startswith(TOKEN_PREFIX) and len(token) == 60
    # cvk_ + 12-character lookup id + _ + 43-character secret (which may hold "_" too)
    secret = token[len(TOKEN_PREFIX) + 13 :].encode()
    assert len(secret) == 43
    for path in tmp_path.glob("server.db*"):
        assert secret not in path.read_bytes()
    with open_store(url) as store:
        principal = verify_token(store, token)
    assert principal is not None and principal.scope is Scope.AGENT
    listed = certvigil("keys", "list", "--config", str(config))
    assert "lab-a" in listed.stdout and secret.decode() not in listed.stdout
    taken = certvigil("keys", "create", "-c", str(config), "--name", "lab-a", "--scope", "read")
    assert taken.returncode == 64 and "taken" in taken.stderr
    revoked = certvigil("keys", "revoke", "--config", str(config), "--name", "lab-a")
    assert revoked.returncode == 0
    with open_store(url) as store:
        assert verify_token(store, token) is None
    again = certvigil("keys", "revoke", "--config", str(config), "--name", "lab-a")
    assert again.returncode == 64 and again.stderr.startswith("error: ")


def test_a_token_differing_anywhere_is_refused(tmp_path: Path) -> None:
    """Changing any one character of a valid token makes it invalid."""
    with open_store(f"sqlite:///{tmp_path / 's.db'}") as store:
        token = create_key(store, name="k", scope=Scope.READ, now=datetime.now(UTC)).token
        assert verify_token(store, token) is not None
        for index in range(len(TOKEN_PREFIX), len(token)):
            changed = token[:index] + ("A" if token[index] != "A" else "B") + token[index + 1 :]
            assert verify_token(store, changed) is None, index
        assert verify_token(store, token + "x") is None
        assert verify_token(store, "x" * 10_000) is None


def test_a_revoked_key_is_refused_once_its_cached_check_lapses(tmp_path: Path) -> None:
    """The server reuses a key verified within the cache's time-to-live and asks the
    database again after it: a revoked key then gets 401, a wrong key never counts."""
    import asyncio

    import httpx

    from certvigil.config.loading import load_config
    from certvigil.server.app import create_app
    from certvigil.server.auth import PrincipalCache
    from certvigil.store import server_queries as sq

    url = f"sqlite:///{tmp_path / 's.db'}"
    loaded = load_config(write_server_config(tmp_path, url))
    with open_store(url) as store:
        token = create_key(store, name="k", scope=Scope.READ, now=datetime.now(UTC)).token
        app = create_app(loaded, store, background=False)

        async def status(key: str) -> int:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                answer = await client.get("/api/v1/status", headers={"X-API-Key": key})
                return answer.status_code

        # Given a key the server has just verified (kept for an hour here),
        app.state.principals = PrincipalCache(ttl_s=3600)
        assert asyncio.run(status(token)) == 200
        # when it is revoked,
        with store.write() as connection:
            assert sq.revoke_api_key(connection, "k", now=datetime.now(UTC))
        # then the kept check answers until it lapses, and once it has (a cache that
        # keeps nothing stands for the second having passed) the key is refused,
        assert asyncio.run(status(token)) == 200
        app.state.principals = PrincipalCache(ttl_s=-1)
        assert asyncio.run(status(token)) == 401
        # and a key differing in one character never rides on a kept one.
        app.state.principals = PrincipalCache(ttl_s=3600)
        assert asyncio.run(status(token[:-1] + ("A" if token[-1] != "A" else "B"))) == 401
