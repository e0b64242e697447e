"""The Store: one handle on the inventory, with transactions and the common operations.

Each method runs in its own transaction. To combine operations atomically (record a
report and open its alerts; claim and mark deliveries), open a transaction with
:meth:`Store.write` and call the functions of ``store.ingest``, ``store.queries``,
``store.outbox`` and ``store.retention`` on the connection it yields.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from certvigil.analysis.changes import Change
from certvigil.analysis.model import CertificateFacts, EndpointReport, Severity
from certvigil.errors import StoreError
from certvigil.store import ingest, outbox, queries, retention, stored_certificates
from certvigil.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    WRITE_OPTION,
    create_store_engine,
    describe_url,
)
from certvigil.store.metrics_state import InventoryState, inventory_state
from certvigil.store.migrations import HEAD_REVISION, current_revision, upgrade_to_head
from certvigil.store.records import (
    AlertRecord,
    DeliveryRecord,
    DeploymentRecord,
    EndpointRecord,
    InventoryRow,
    ObservationId,
    ObservationRecord,
)
from certvigil.targets.target import Target


class Store:
    """The inventory database: endpoints, certificates, observations, alerts, outbox.

    Construct with :func:`open_store`; the constructor itself does no I/O.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        # SQLite lets one writer in at a time, and a writer that finds the database
        # locked sleeps in SQLite's busy handler (up to 100 ms at a time) however soon
        # it is free again. Writers of this process (the server's request threads, the
        # outbox) queue here instead and start the moment the last one commits.
        self._write_lock = threading.RLock() if engine.dialect.name == "sqlite" else None

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine."""
        return self._engine

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._engine.dialect.name

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return describe_url(self._engine)

    def close(self) -> None:
        """Closes every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success.

        Raises:
            StoreError: The database refused or could not be reached.
        """
        with self._writer(), self._errors(), self._engine.connect() as connection:
            connection = connection.execution_options(**{WRITE_OPTION: True})
            stored_certificates.begun(connection)
            with connection.begin():
                yield connection
            stored_certificates.committed(connection)

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """This process's turn to write, waited for as long as SQLite's busy time-out
        (a writer stuck for longer is reported as SQLite would, not waited on for ever)."""
        lock = self._write_lock
        if lock is None:
            yield
            return
        if not lock.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / 1000):
            raise StoreError(f"database {self.url}: database is locked")
        try:
            yield
        finally:
            lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction; one consistent snapshot on both databases.

        Raises:
            StoreError: The database could not be reached.
        """
        with self._errors(), self._engine.connect() as connection, connection.begin():
            yield connection

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise StoreError(f"database {self.url}: {_first_line(exc.orig or exc)}") from exc
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.url}: {_first_line(exc)}") from exc

    # Ingest -------------------------------------------------------------------------

    def record_report(
        self, report: EndpointReport, *, tags: Iterable[str] | None = None
    ) -> ObservationId:
        """Writes one scan result as one observation (see ``ingest.record_report``)."""
        with self.write() as connection:
            return ingest.record_report(connection, report, tags=tags)

    def record_reports(
        self,
        reports: Sequence[EndpointReport],
        *,
        tags: Mapping[Target, Iterable[str]] | None = None,
    ) -> tuple[ObservationId, ...]:
        """Writes several scan results in one transaction (faster than one by one).

        Args:
            reports: The results.
            tags: Labels per target, replacing their current ones; targets absent
                from the mapping keep theirs.

        Returns:
            The new observations' ids, in the order of ``reports``.
        """
        with self.write() as connection:
            return ingest.record_reports(connection, reports, tags=tags)

    # Queries ------------------------------------------------------------------------

    def inventory(self, **filters: Any) -> tuple[InventoryRow, ...]:
        """Deployed certificates (see ``queries.inventory`` for the filters)."""
        with self.read() as connection:
            return queries.inventory(connection, **filters)

    def expiring_certificates(
        self,
        *,
        now: datetime,
        within_days: float,
        host_glob: str | None = None,
        issuer: str | None = None,
        tag: str | None = None,
        include_chain: bool = False,
    ) -> tuple[InventoryRow, ...]:
        """Deployed certificates expiring within ``within_days`` of ``now``."""
        with self.read() as connection:
            return queries.expiring_certificates(
                connection,
                now=now,
                within_days=within_days,
                host_glob=host_glob,
                issuer=issuer,
                tag=tag,
                include_chain=include_chain,
            )

    def certificate_deployments(
        self, sha256_hex: str, *, current_only: bool = False
    ) -> tuple[DeploymentRecord, ...]:
        """Where a certificate is or was served."""
        with self.read() as connection:
            return queries.certificate_deployments(
                connection, sha256_hex, current_only=current_only
            )

    def find_endpoint(self, target: Target) -> EndpointRecord | None:
        """The endpoint with exactly this key, ``None`` if never observed."""
        with self.read() as connection:
            return queries.find_endpoint(connection, target)

    def list_endpoints(self, **filters: Any) -> tuple[EndpointRecord, ...]:
        """Known endpoints (see ``queries.list_endpoints`` for the filters)."""
        with self.read() as connection:
            return queries.list_endpoints(connection, **filters)

    def endpoint_history(
        self, endpoint_id: int, *, limit: int | None = 100, since_utc: datetime | None = None
    ) -> tuple[ObservationRecord, ...]:
        """An endpoint's observations, newest first."""
        with self.read() as connection:
            return queries.endpoint_history(
                connection, endpoint_id, limit=limit, since_utc=since_utc
            )

    def endpoint_changes(
        self, endpoint_id: int, *, since_utc: datetime | None = None
    ) -> tuple[Change, ...]:
        """What changed at an endpoint, oldest first."""
        with self.read() as connection:
            return queries.endpoint_changes(connection, endpoint_id, since_utc=since_utc)

    def changes_since(
        self, since_utc: datetime, *, host_glob: str | None = None, tag: str | None = None
    ) -> tuple[tuple[EndpointRecord, tuple[Change, ...]], ...]:
        """What changed anywhere since a time."""
        with self.read() as connection:
            return queries.changes_since(connection, since_utc, host_glob=host_glob, tag=tag)

    def fingerprints_with_prefix(self, prefix: str, *, limit: int = 11) -> tuple[str, ...]:
        """Stored fingerprints starting with ``prefix`` (see ``queries``)."""
        with self.read() as connection:
            return queries.fingerprints_with_prefix(connection, prefix, limit=limit)

    def get_certificate(self, sha256_hex: str) -> CertificateFacts | None:
        """A stored certificate's facts, ``None`` when unknown."""
        with self.read() as connection:
            return queries.get_certificate(connection, sha256_hex)

    def inventory_state(self) -> InventoryState:
        """Every endpoint's latest state, with alert and outbox counts (monitoring)."""
        with self.read() as connection:
            return inventory_state(connection)

    def get_observation(self, observation_id: int) -> ObservationRecord | None:
        """One observation by id."""
        with self.read() as connection:
            return queries.get_observation(connection, observation_id)

    # Retention ----------------------------------------------------------------------

    def prune_observations(self, *, now: datetime, keep_days: float) -> int:
        """Deletes old observations (see ``retention.prune_observations``)."""
        with self.write() as connection:
            return retention.prune_observations(connection, now=now, keep_days=keep_days)

    # Alerts and outbox -------------------------------------------------------------

    def open_alert_if_absent(
        self,
        *,
        dedup_key: str,
        kind: str,
        severity: Severity,
        summary: str,
        now: datetime,
        endpoint_id: int | None = None,
        certificate_sha256: str | None = None,
        observation_id: int | None = None,
        details: Mapping[str, Any] | None = None,
        routes: Iterable[str] = (),
    ) -> tuple[AlertRecord, bool]:
        """Opens an alert unless one is active for the key (see ``outbox``)."""
        with self.write() as connection:
            return outbox.open_alert_if_absent(
                connection,
                dedup_key=dedup_key,
                kind=kind,
                severity=severity,
                summary=summary,
                now=now,
                endpoint_id=endpoint_id,
                certificate_sha256=certificate_sha256,
                observation_id=observation_id,
                details=details,
                routes=routes,
            )

    def list_alerts(self, **filters: Any) -> tuple[AlertRecord, ...]:
        """Alerts, newest first (see ``outbox.list_alerts`` for the filters)."""
        with self.read() as connection:
            return outbox.list_alerts(connection, **filters)

    def list_deliveries(self, **filters: Any) -> tuple[DeliveryRecord, ...]:
        """Queued deliveries (see ``outbox.list_deliveries`` for the filters)."""
        with self.read() as connection:
            return outbox.list_deliveries(connection, **filters)

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        """One alert by id."""
        with self.read() as connection:
            return outbox.get_alert(connection, alert_id)

    def acknowledge_alert(self, alert_id: int, *, by: str, now: datetime) -> bool:
        """Acknowledges an open alert."""
        with self.write() as connection:
            return outbox.acknowledge_alert(connection, alert_id, by=by, now=now)

    def resolve_alert(self, alert_id: int, *, now: datetime, routes: Iterable[str] = ()) -> bool:
        """Resolves an active alert, queuing its ``"resolved"`` deliveries."""
        with self.write() as connection:
            return outbox.resolve_alert(connection, alert_id, now=now, routes=routes)

    def enqueue_delivery(self, *, alert_id: int, event: str, route: str, now: datetime) -> bool:
        """Queues a notification unless already queued."""
        with self.write() as connection:
            return outbox.enqueue_delivery(
                connection, alert_id=alert_id, event=event, route=route, now=now
            )

    def claim_due_deliveries(
        self,
        *,
        now: datetime,
        limit: int = 50,
        lease_s: float = outbox.DEFAULT_LEASE_S,
        owner: outbox.WorkerId | None = None,
    ) -> tuple[DeliveryRecord, ...]:
        """Claims due deliveries for ``owner`` (this process when ``None``)."""
        with self.write() as connection:
            return outbox.claim_due_deliveries(
                connection, now=now, limit=limit, lease_s=lease_s, owner=owner
            )

    def mark_delivered(
        self, delivery_id: int, *, now: datetime, owner: outbox.WorkerId | None = None
    ) -> bool:
        """Records a delivery claimed by ``owner`` as sent."""
        with self.write() as connection:
            return outbox.mark_delivered(connection, delivery_id, now=now, owner=owner)

    def mark_failed(
        self,
        delivery_id: int,
        *,
        next_attempt_at: datetime,
        error: str,
        give_up: bool = False,
        owner: outbox.WorkerId | None = None,
    ) -> bool:
        """Records a failed attempt of a delivery claimed by ``owner``."""
        with self.write() as connection:
            return outbox.mark_failed(
                connection,
                delivery_id,
                next_attempt_at=next_attempt_at,
                error=error,
                give_up=give_up,
                owner=owner,
            )


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """Opens the inventory, creating it or bringing its schema up to date.

    Args:
        url: A database URL or SQLite file path; ``None`` for ``$CERTVIGIL_DATABASE_URL``
            or the default path (see ``certvigil.store.engine``).
        migrate: Apply pending migrations (on by default).

    Returns:
        The store.

    Raises:
        UsageError: The URL is malformed or unsupported.
        StoreError: The database cannot be reached or migrated.
    """
    engine = create_store_engine(url)
    store = Store(engine)
    if migrate:
        try:
            upgrade_to_head(engine)
        except SQLAlchemyError as exc:
            engine.dispose()
            read_only = _open_read_only(engine)
            if read_only is not None:
                return read_only
            orig = getattr(exc, "orig", None) or exc
            raise StoreError(f"database {describe_url(engine)}: {_first_line(orig)}") from exc
    return store


def _open_read_only(engine: Engine) -> Store | None:
    """The SQLite file of ``engine`` opened read-only, when it cannot be written.

    A database file of mode 0444, in a read-only directory or on a read-only file system
    still serves the commands that only read (``inventory``, ``alerts list``): it is
    opened with ``mode=ro`` (which sees the write-ahead log when its shared-memory file
    can be used), else ``immutable=1`` (the main file only, for a directory nobody can
    write). Its schema must already be current, since it cannot be migrated; writing
    through it fails with an error naming the database.

    Returns:
        The read-only store, or ``None`` when that is not the case (not SQLite, a file
        that can be written or does not exist, an older schema, a file that cannot be
        read).
    """
    url = engine.url
    path = Path(url.database or "")
    if url.get_backend_name() != "sqlite" or str(path).startswith("file:"):
        return None
    if not path.is_file() or (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return None
    for options in ("mode=ro", "mode=ro&immutable=1"):
        read_only = create_store_engine(
            URL.create("sqlite", database=f"file:{path}?{options}", query={"uri": "true"})
        )
        try:
            if current_revision(read_only) == HEAD_REVISION:
                return Store(read_only)
        except SQLAlchemyError:
            pass
        read_only.dispose()
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
