"""The schema: migrations agree with the models, and engines are set up as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from certvigil.errors import UsageError
from certvigil.store import open_store
from certvigil.store.engine import (
    DATABASE_URL_ENV,
    create_store_engine,
    default_database_path,
    resolve_database_url,
)
from certvigil.store.migrations import (
    HEAD_REVISION,
    current_revision,
    head_revision,
    include_object_for,
    upgrade_to_head,
)
from certvigil.store.models import Base


def test_migration_creates_every_model_table(db_url: str) -> None:
    """Migrating an empty database to head creates every table the models declare."""
    engine = create_store_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade_to_head(engine)
        assert current_revision(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables).issubset(tables)
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    """Autogenerate finds no difference between the migrated schema and the models."""
    engine = create_store_engine(db_url)
    try:
        upgrade_to_head(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection,
                opts={
                    "compare_type": True,
                    "include_object": include_object_for(connection.dialect.name),
                },
            )
            diff = compare_metadata(context, Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_upgrade_twice_is_harmless(db_url: str) -> None:
    """Opening an already migrated database leaves it at head without error."""
    open_store(db_url).close()
    store = open_store(db_url)
    try:
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_sqlite_pragmas(tmp_path: Path) -> None:
    """SQLite connections use WAL, enforce foreign keys and wait for locks."""
    store = open_store(str(tmp_path / "inv.db"))
    try:
        with store.read() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_default_sqlite_directory_is_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default SQLite file's directory (under $XDG_DATA_HOME) is created when missing."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    path = tmp_path / "data" / "certvigil" / "inv.db"
    open_store(f"sqlite:///{path}").close()
    assert path.exists()


def test_missing_sqlite_directory_is_refused(tmp_path: Path) -> None:
    """A SQLite file named in a directory that does not exist is a usage error naming
    the directory, and no directory is created (a typo must not start a new inventory)."""
    path = tmp_path / "deep" / "er" / "inv.db"
    with pytest.raises(UsageError, match=r"the directory .*deep/er does not exist"):
        open_store(f"sqlite:///{path}")
    assert not (tmp_path / "deep").exists()


def test_default_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without a URL, a non-root user's database lives under $XDG_DATA_HOME/certvigil."""
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    import os

    expected = (
        Path("/var/lib/certvigil/certvigil.db")
        if os.geteuid() == 0
        else tmp_path / "certvigil" / "certvigil.db"
    )
    assert default_database_path() == expected
    assert resolve_database_url(None).database == str(expected)


def test_environment_names_the_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$CERTVIGIL_DATABASE_URL is used when no URL is given."""
    monkeypatch.setenv(DATABASE_URL_ENV, f"sqlite:///{tmp_path}/env.db")
    assert resolve_database_url(None).database == f"{tmp_path}/env.db"


def test_plain_path_and_postgres_urls() -> None:
    """A plain path means SQLite; PostgreSQL URLs get the psycopg 3 driver."""
    assert resolve_database_url("/srv/inv.db").drivername == "sqlite"
    assert resolve_database_url("postgresql://u@db/x").drivername == "postgresql+psycopg"
    assert resolve_database_url("postgres://u@db/x").drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("mysql://u@db/x", "unsupported database"),
        ("sqlite://", "in-memory"),
        ("postgresql+asyncpg://u@db/x", "not supported"),
        ("not a url://x", "cannot be parsed"),
    ],
)
def test_bad_urls_are_usage_errors(url: str, reason: str) -> None:
    """Unsupported or malformed URLs raise a UsageError saying why."""
    with pytest.raises(UsageError, match=reason):
        resolve_database_url(url)


def test_concurrent_first_opens_migrate_once(db_url: str) -> None:
    """Threads opening a never-migrated database at once all end at head, without error."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            open_store(db_url).close()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    engine = create_store_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_upgrade_from_first_revision_backfills_deployment_expiry(db_url: str) -> None:
    """A database holding data at revision 0001 upgrades, copying expiries to deployments."""
    from alembic import command
    from sqlalchemy import text

    from certvigil.store.migrations import alembic_config

    engine = create_store_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0001")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO certificates (sha256_hex, subject, issuer, serial_hex, "
                    "not_before_utc, not_after_utc, key_type, key_bits, signature_algorithm, "
                    "is_ca, is_self_signed, san_dns, facts, first_seen_utc) VALUES "
                    "('ab', 'CN=a', 'CN=ca', '01', '2026-01-01 00:00:00.000000', "
                    "'2026-12-31 00:00:00.000000', 'ec', 256, 'ecdsa', false, false, '[]', "
                    "'{}', '2026-01-01 00:00:00.000000')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO endpoints (host, port, sni, starttls, first_seen_utc, "
                    "last_seen_utc, last_status, consecutive_failures) VALUES ('h', 443, '', "
                    "'', '2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', 'ok', 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO deployments (endpoint_id, certificate_sha256, chain_position, "
                    "first_seen_utc, last_seen_utc, is_current) VALUES (1, 'ab', 0, "
                    "'2026-01-01 00:00:00.000000', '2026-01-01 00:00:00.000000', true)"
                )
            )
        upgrade_to_head(engine)
        store = open_store(db_url)
        try:
            (row,) = store.inventory()
            assert row.not_after_utc.isoformat() == "2026-12-31T00:00:00+00:00"
        finally:
            store.close()
    finally:
        engine.dispose()


def test_head_revision_constant_is_the_newest_script() -> None:
    """``HEAD_REVISION``, which a current store is checked against without Alembic, names
    the newest packaged migration (a new migration must move it)."""
    assert HEAD_REVISION == head_revision()


def test_upgrade_to_owned_claims_keeps_queued_deliveries_working(db_url: str) -> None:
    """A delivery queued and claimed at revision 0005 upgrades: it gets a derived key and
    is released by lease as before; new deliveries get their own keys."""
    from datetime import UTC, datetime, timedelta

    from alembic import command
    from sqlalchemy import text

    from certvigil.store.migrations import alembic_config

    engine = create_store_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0005")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO alerts (dedup_key, kind, severity, state, summary, details, "
                    "opened_at_utc) VALUES ('k', 'untrusted', 'critical', 'open', 's', '{}', "
                    "'2026-01-01 00:00:00.000000')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO deliveries (alert_id, event, route, status, attempts, "
                    "created_at_utc, next_attempt_at_utc, lease_until_utc) VALUES (1, 'opened', "
                    "'hook#abc', 'sending', 1, '2026-01-01 00:00:00.000000', "
                    "'2026-01-01 00:00:00.000000', '2026-01-01 00:05:00.000000')"
                )
            )
    finally:
        engine.dispose()
    store = open_store(db_url)
    try:
        (old,) = store.list_deliveries()
        assert old.idempotency_key == f"certvigil-delivery-{old.id}" and old.claimed_by is None
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        assert store.claim_due_deliveries(now=t0 + timedelta(minutes=4)) == ()
        (again,) = store.claim_due_deliveries(now=t0 + timedelta(minutes=5))
        assert again.id == old.id and again.attempts == 2
        assert store.mark_delivered(again.id, now=t0 + timedelta(minutes=6))
        assert store.enqueue_delivery(alert_id=1, event="resolved", route="hook#abc", now=t0)
        new = next(d for d in store.list_deliveries() if d.event == "resolved")
        assert new.idempotency_key.startswith("certvigil-") and new.idempotency_key != (
            f"certvigil-delivery-{new.id}"
        )
    finally:
        store.close()


def test_users_from_before_roles_stay_admins(db_url: str) -> None:
    """A dashboard user made at revision 0011 is an admin after the upgrade (0014), as
    every user could acknowledge and resolve before; a new viewer is a viewer."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import text

    from certvigil.store import dashboard as board
    from certvigil.store.migrations import alembic_config

    engine = create_store_engine(db_url)
    try:
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "0011")
            connection.execute(
                text(
                    "INSERT INTO dashboard_users (name, password_hash, created_at_utc) "
                    "VALUES ('old', 'x', '2026-01-01 00:00:00.000000')"
                )
            )
        upgrade_to_head(engine)
        with engine.begin() as connection:
            old = board.get_user(connection, "old")
            board.add_user(
                connection,
                name="new",
                password_hash="x",
                now=datetime.now(UTC),
                role=board.UserRole.VIEWER,
            )
            new = board.get_user(connection, "new")
    finally:
        engine.dispose()
    assert old is not None and old.role is board.UserRole.ADMIN
    assert new is not None and new.role is board.UserRole.VIEWER
