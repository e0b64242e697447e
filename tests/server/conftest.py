"""Fixtures of the server tests: configuration files, keys, the app in-process."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.config.loading import LoadedConfig, load_config
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.server.keys import Scope, create_key
from certvigil.store import Store, open_store


def write_server_config(
    directory: Path,
    database_url: str,
    *,
    scan_allow: tuple[str, ...] = ("127.0.0.0/8",),
    assignments: list[dict[str, object]] | None = None,
    **more: object,
) -> Path:
    """A server configuration file in ``directory``."""
    path = directory / "server.yaml"
    serve: dict[str, object] = {"scan_allow": list(scan_allow)}
    if assignments:
        serve["assignments"] = assignments
    document = {"database_url": database_url, "serve": serve, **more}
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def make_key(store: Store, name: str, scope: Scope) -> str:
    """A new API key's token."""
    return create_key(store, name=name, scope=scope, now=datetime.now(UTC)).token


def root_pem_file(pki: ThrowawayPki, directory: Path) -> Path:
    """The test root as a PEM file (an agent's ``trust.ca_files``)."""
    path = directory / "root.pem"
    path.write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    return path


@pytest.fixture(scope="module")
def expiring_leaf(pki: ThrowawayPki) -> IssuedCert:
    """A 90-day leaf for 127.0.0.1 with 10 days left: crosses the 14-day threshold."""
    now = datetime.now(UTC)
    return pki.issue_leaf(
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
        not_before_utc=now - timedelta(days=80),
        not_after_utc=now + timedelta(days=10),
    )


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite inventory in ``tmp_path``."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    open_store(url).close()
    return url


@pytest.fixture
def server_loaded(tmp_path: Path, sqlite_url: str) -> LoadedConfig:
    """A server configuration on ``sqlite_url``, scans allowed on loopback."""
    return load_config(write_server_config(tmp_path, sqlite_url))


@pytest.fixture
def server_store(server_loaded: LoadedConfig) -> Iterator[Store]:
    """The server's store."""
    store = open_store(server_loaded.database_url)
    try:
        yield store
    finally:
        store.close()
