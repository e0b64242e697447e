"""The inventory schema: endpoints, certificates, deployments, observations, alerts, deliveries,
and the daemon lock.

One model serves SQLite and PostgreSQL. Times are stored as UTC (``timestamptz`` on
PostgreSQL, ISO text on SQLite) and always come back as aware UTC datetimes.
Optional text keys that take part in a uniqueness rule (an endpoint's SNI and STARTTLS
protocol) are stored as ``""`` rather than NULL, because both databases treat NULLs
as distinct in a UNIQUE constraint.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    case,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ONLY_ON_DIALECT = "certvigil_only_on"
"""Key in a schema object's ``info`` naming the one database it exists on (with
``ddl_if``); the migrations' schema comparison leaves it out elsewhere."""

# SQLite only auto-increments INTEGER PRIMARY KEY, not BIGINT.
IdType = BigInteger().with_variant(Integer(), "sqlite")


_UTC_TEXTS: dict[datetime, str] = {}
_UTC_TEXTS_KEPT = 4096


def sqlite_utc_text(value: datetime) -> str:
    """An aware datetime as SQLite stores it: UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``.

    This is SQLAlchemy's own SQLite storage format, which sorts as time does.

    The texts of recent times are kept: a batch writes its evaluation time and each
    report's observation time several times over (observation, endpoint, deployment
    and alert rows), and ``isoformat`` was one of the dearer calls of recording. Equal
    aware times are the same instant and have the same text; a naive time never
    equals an aware one, so it is never found here and is refused below.

    Raises:
        ValueError: ``value`` is naive.
    """
    text = _UTC_TEXTS.get(value)
    if text is not None:
        return text
    if value.tzinfo is UTC:
        # Already UTC (the usual case): drop the "+00:00" isoformat appends.
        text = value.isoformat(" ", "microseconds")[:-6]
    elif value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware UTC time")
    else:
        text = value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if len(_UTC_TEXTS) >= _UTC_TEXTS_KEPT:
        _UTC_TEXTS.clear()
    _UTC_TEXTS[value] = text
    return text


def utc_from_sqlite_text(value: str) -> datetime:
    """SQLite's stored UTC text (:func:`sqlite_utc_text`) as an aware datetime.

    Appending the offset parses straight to an aware value, several times faster than
    parsing and then calling ``replace(tzinfo=...)``.
    """
    return datetime.fromisoformat(value + "+00:00")


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on both databases; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Converts to UTC; drops the zone on SQLite, which stores plain text."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass an aware UTC time")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Returns an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # On SQLite, convert text directly, in SQLAlchemy's own storage format
    # ("YYYY-MM-DD HH:MM:SS.ffffff", which sorts as time does), skipping the generic
    # two-step conversion: inventory queries read thousands of these.

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """Formats aware datetimes as UTC text on SQLite; the generic path elsewhere."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            return None if value is None else sqlite_utc_text(value)

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """Parses UTC text on SQLite; the generic path elsewhere."""
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        def from_text(value: str | None) -> datetime | None:
            return None if value is None else utc_from_sqlite_text(value)

        return from_text


class Base(DeclarativeBase):
    """Declarative base carrying the shared metadata and naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime()}


class Endpoint(Base):
    """A place a certificate is served: (host, port, SNI, STARTTLS protocol)."""

    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("host", "port", "sni", "starttls", name="uq_endpoints_key"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255), index=True)
    port: Mapped[int] = mapped_column(Integer)
    sni: Mapped[str] = mapped_column(String(255), default="", server_default="")
    starttls: Mapped[str] = mapped_column(String(16), default="", server_default="")
    first_seen_utc: Mapped[datetime]
    last_seen_utc: Mapped[datetime]
    last_ok_utc: Mapped[datetime | None]
    last_status: Mapped[str] = mapped_column(String(16))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Not indexed: no query looks endpoints up by certificate, certificates are never
    # deleted, and every ingested report sets this column (migration 0004).
    current_certificate_sha256: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("certificates.sha256_hex")
    )
    last_observation_id: Mapped[int | None] = mapped_column(IdType)
    # The latest result of each check that does not run on every scan (revision 0007):
    # kept here, as current_certificate_sha256 is, so that the inventory filters by
    # grade, revocation and protocols without reading the observations.
    grade: Mapped[str | None] = mapped_column(String(4))
    protocols: Mapped[str | None] = mapped_column(String(64))
    """Accepted protocols, comma-separated oldest first; ``None`` until probed."""
    revocation_status: Mapped[str | None] = mapped_column(String(24))


class EndpointTag(Base):
    """A free-form label on an endpoint (``prod``, ``team-payments``)."""

    __tablename__ = "endpoint_tags"

    endpoint_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("endpoints.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Certificate(Base):
    """One certificate, keyed by the SHA-256 of its DER, wherever it is deployed.

    On PostgreSQL a hash index on the fingerprint serves lookups by key (the
    inventory reads thousands at once): two pages per lookup instead of the primary
    key's four-level descent, about a third of that query's time in the database.
    Certificates are never updated, so it costs only a new certificate's insert.
    """

    __tablename__ = "certificates"
    __table_args__ = (
        Index(
            "ix_certificates_sha256_hex_hash",
            "sha256_hex",
            postgresql_using="hash",
            info={ONLY_ON_DIALECT: "postgresql"},
        ).ddl_if(dialect="postgresql"),
    )

    sha256_hex: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    subject_cn: Mapped[str | None] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text)
    issuer_cn: Mapped[str | None] = mapped_column(Text)
    serial_hex: Mapped[str] = mapped_column(String(128))
    not_before_utc: Mapped[datetime]
    not_after_utc: Mapped[datetime] = mapped_column(index=True)
    key_type: Mapped[str] = mapped_column(String(16))
    key_bits: Mapped[int] = mapped_column(Integer)
    signature_algorithm: Mapped[str] = mapped_column(String(100))
    is_ca: Mapped[bool] = mapped_column(Boolean)
    is_self_signed: Mapped[bool] = mapped_column(Boolean)
    san_dns: Mapped[list[str]] = mapped_column(JSON)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON)
    der: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_seen_utc: Mapped[datetime]


class Deployment(Base):
    """A certificate served by an endpoint, from when to when; ``is_current`` if still.

    ``not_after_utc`` repeats the certificate's expiry (which never changes) so that
    "what expires soon" reads only current deployments, in expiry order, from one
    index (which also holds the other columns it needs), instead of every certificate
    ever seen.
    """

    __tablename__ = "deployments"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "certificate_sha256", name="uq_deployments_pair"),
        # Covering: "what expires soon" reads current deployments from this index alone.
        Index(
            "ix_deployments_current_expiry_cover",
            "is_current",
            "chain_position",
            "not_after_utc",
            "endpoint_id",
            "certificate_sha256",
            "first_seen_utc",
            "last_seen_utc",
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(IdType, ForeignKey("endpoints.id", ondelete="CASCADE"))
    certificate_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("certificates.sha256_hex"), index=True
    )
    chain_position: Mapped[int] = mapped_column(Integer)
    not_after_utc: Mapped[datetime]
    first_seen_utc: Mapped[datetime]
    last_seen_utc: Mapped[datetime]
    is_current: Mapped[bool] = mapped_column(Boolean)


class Observation(Base):
    """One scan result of one endpoint at one time: what was served, or why nothing was."""

    __tablename__ = "observations"
    # An endpoint's observations newest first, holding what the alert rules read of
    # each (status, revocation status, grade, leaf) so those reads never visit the
    # table's large rows (migration 0017).
    __table_args__ = (
        Index(
            "ix_observations_endpoint_time_cover",
            "endpoint_id",
            "observed_at_utc",
            "id",
            "status",
            "revocation_status",
            "grade",
            "leaf_sha256",
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    endpoint_id: Mapped[int] = mapped_column(IdType, ForeignKey("endpoints.id", ondelete="CASCADE"))
    observed_at_utc: Mapped[datetime] = mapped_column(index=True)
    evaluated_at_utc: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    failure_kind: Mapped[str | None] = mapped_column(String(32))
    failure_detail: Mapped[str | None] = mapped_column(Text)
    tls_alert: Mapped[str | None] = mapped_column(String(64))
    peer_address: Mapped[str | None] = mapped_column(String(64))
    protocol: Mapped[str | None] = mapped_column(String(16))
    cipher: Mapped[str | None] = mapped_column(String(100))
    alpn: Mapped[str | None] = mapped_column(String(32))
    leaf_sha256: Mapped[str | None] = mapped_column(String(64))
    chain_sha256: Mapped[list[str]] = mapped_column(JSON)
    is_trusted: Mapped[bool | None] = mapped_column(Boolean)
    chain_error: Mapped[str | None] = mapped_column(Text)
    hostname_matches: Mapped[bool | None] = mapped_column(Boolean)
    verdict: Mapped[str] = mapped_column(String(16))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    connect_s: Mapped[float | None] = mapped_column(Float)
    handshake_s: Mapped[float | None] = mapped_column(Float)
    # Revision 0007: what the optional checks found, queryable, and the whole
    # observation for re-judging (docs/store.md).
    checks: Mapped[str | None] = mapped_column(String(64))
    """The checks that ran, comma-separated (``cert,revocation``); ``None`` before 0007."""
    grade: Mapped[str | None] = mapped_column(String(4))
    protocols: Mapped[str | None] = mapped_column(String(64))
    revocation_status: Mapped[str | None] = mapped_column(String(24))
    """The leaf's revocation status (``good``, ``revoked``, ``unreachable`` …)."""
    observation_z: Mapped[bytes | None] = mapped_column(LargeBinary)
    """The full observation as compressed JSON (``store.packing``), ``None`` when not kept."""


class Alert(Base):
    """A condition worth telling someone about, with its lifecycle.

    At most one alert per ``dedup_key`` is active (open or acknowledged) at a time: a
    partial unique index enforces it on both databases, so a condition that clears and
    comes back opens a new alert, and a condition seen twice never opens two.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        Index(
            "uq_alerts_active_dedup_key",
            "dedup_key",
            unique=True,
            sqlite_where=text("state != 'resolved'"),
            postgresql_where=text("state != 'resolved'"),
        ),
        Index("ix_alerts_state_opened", "state", "opened_at_utc"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    dedup_key: Mapped[str] = mapped_column(String(255), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("endpoints.id", ondelete="SET NULL"), index=True
    )
    certificate_sha256: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("certificates.sha256_hex")
    )
    observation_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("observations.id", ondelete="SET NULL")
    )
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    opened_at_utc: Mapped[datetime]
    acknowledged_at_utc: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(255))
    resolved_at_utc: Mapped[datetime | None]


class Delivery(Base):
    """The outbox: one notification of one alert event through one route.

    ``UNIQUE (alert_id, event, route)`` makes queuing idempotent: an alert event can
    never be queued twice for the same route, however often the engine retries.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "event", "route", name="uq_deliveries_alert_event_route"),
        Index("ix_deliveries_due", "status", "next_attempt_at_utc"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(IdType, ForeignKey("alerts.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    route: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at_utc: Mapped[datetime]
    next_attempt_at_utc: Mapped[datetime]
    lease_until_utc: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at_utc: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(255))
    """While ``sending``: the worker holding the claim (host, process id, start nonce)."""
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    """Sent with every attempt so receivers can drop repeats; ``None`` on rows queued
    before revision 0006 (their key is derived from the id)."""


class DaemonLock(Base):
    """Who runs the daemon on this database: one row per lock name, with a lease.

    The holder renews ``lease_until_utc`` while it runs; another process may take the
    row over only once the lease has lapsed (or, on the same host, once the holder's
    process is gone). A row rather than a database-specific lock, so that it works the
    same on SQLite and PostgreSQL and can be read by ``alerts deliveries``.
    """

    __tablename__ = "daemon_locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(255))
    acquired_at_utc: Mapped[datetime]
    heartbeat_at_utc: Mapped[datetime]
    lease_until_utc: Mapped[datetime]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


ENDPOINTS = _table(Endpoint)
ENDPOINT_TAGS = _table(EndpointTag)
CERTIFICATES = _table(Certificate)
DEPLOYMENTS = _table(Deployment)


def deployment_last_seen(deployment: Any, endpoint: Any) -> Any:
    """When a deployment was last seen (``deployments`` and ``endpoints`` columns).

    A current deployment is seen whenever its endpoint succeeds, so its last sighting
    is the endpoint's ``last_ok_utc``; ingest does not rewrite the row each time (see
    ``store.ingest``). A retired one keeps its own ``last_seen_utc``, written when it
    was retired.
    """
    return case(
        (
            still_served(deployment.is_current),
            current_deployment_last_seen(endpoint.last_ok_utc, deployment.last_seen_utc),
        ),
        else_=deployment.last_seen_utc,
    )


def current_deployment_last_seen(endpoint_last_ok: Any, deployment_last_seen: Any) -> Any:
    """When a current deployment was last seen: its endpoint's last success (the row's
    own time should the endpoint have none), for selects of current deployments only."""
    return func.coalesce(endpoint_last_ok, deployment_last_seen)


def still_served(is_current: Any) -> Any:
    """``deployments.is_current`` is true, written so that a database keeps choosing
    the index on the other condition.

    Given ``endpoint_id = ? AND is_current IS 1`` (or ``certificate_sha256 = ?``),
    SQLite without statistics prefers the covering expiry index, whose first column
    is ``is_current``, and reads every current deployment of the fleet to find one
    endpoint's. ``IS NOT 0`` means the same for this NOT NULL column and uses no
    index, so the endpoint's (or certificate's) own index is used.
    """
    return is_current.is_not(False)


OBSERVATIONS = _table(Observation)
ALERTS = _table(Alert)
DELIVERIES = _table(Delivery)
DAEMON_LOCKS = _table(DaemonLock)

# Tables of other parts, declared in their own modules on the same metadata.
from certvigil.store import distributed_models as _distributed_models  # noqa: E402,F401
