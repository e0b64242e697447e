"""Fixtures shared by every test package; area fixtures live in each sub-package.

Databases: ``db_url`` and ``store`` run a test twice, on SQLite in ``tmp_path`` and on
a real PostgreSQL that ``postgres_server`` starts once per session from Debian's
binaries (``/usr/lib/postgresql/*/bin``) on 127.0.0.1 and a free port, as the
``postgres`` user when the tests run as root. On PostgreSQL, ``db_url`` is a new
empty database per test (dropped afterwards) and ``store_url`` one migrated database
whose tables are emptied before each test.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.errors import StoreError
from certvigil.store import Store, open_store
from certvigil.store.models import Base
from tests.support.postgres import ThrowawayPostgres, postgres_bindir

_PG_DATABASES = itertools.count(1)

# Property tests search with a fixed seed by default, so every run of the suite (and CI)
# tries the same inputs and a found case cannot turn a later run red by chance; every case
# a search has found is pinned with @example beside its test. `HYPOTHESIS_PROFILE=fuzz`
# searches randomly and ten times wider, on demand.
settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "fuzz",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """A real PostgreSQL on 127.0.0.1 for the whole session, removed at the end.

    It holds two databases: ``certvigil_empty`` (no tables; the template for
    ``db_url``) and ``certvigil_migrated`` (at head; emptied for each ``store_url``).
    """
    if postgres_bindir() is None:
        pytest.skip(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "install Debian's postgresql package (scripts/install-system-deps.sh)"
        )
    server = ThrowawayPostgres()
    try:
        server.start()
    except StoreError as exc:
        pytest.fail(f"could not start PostgreSQL: {exc}")
    try:
        server.create_database("certvigil_empty")
        open_store(server.create_database("certvigil_migrated")).close()
        yield server
    finally:
        server.stop()


def _postgres_database(server: ThrowawayPostgres, template: str) -> Iterator[str]:
    name = f"certvigil_test_{os.getpid()}_{next(_PG_DATABASES)}"
    url = server.create_database(name, template=template)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty (unmigrated) database: SQLite in tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'certvigil.db'}"
        return
    server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
    yield from _postgres_database(server, "certvigil_empty")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh database with the schema at head, on SQLite then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'certvigil.db'}"
        open_store(url).close()
        yield url
        return
    server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
    server.empty_tables("certvigil_migrated", list(Base.metadata.tables))
    yield server.url("certvigil_migrated")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open Store on a fresh migrated database, on SQLite then PostgreSQL."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def open_another_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens more Stores on the same database as ``store`` (a second process's view)."""
    opened: list[Store] = []

    def _open() -> Store:
        handle = open_store(store_url)
        opened.append(handle)
        return handle

    yield _open
    for handle in opened:
        handle.close()


# A throwaway PKI for the scan tests (module-scoped: each module gets its own CA).


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    """A root and intermediate for these tests."""
    return ThrowawayPki.create()


@pytest.fixture(scope="module")
def leaf(pki: ThrowawayPki) -> IssuedCert:
    """A leaf for localhost and 127.0.0.1."""
    return pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))


@pytest.fixture(scope="module")
def trust(pki: ThrowawayPki) -> TrustStore:
    """A trust store holding only the test root."""
    return TrustStore.from_certificates([pki.root.certificate], source="test root")
