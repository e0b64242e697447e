"""Writing scan results: one EndpointReport becomes one observation, in one transaction.

Certificates are upserted by SHA-256 (one row wherever they are deployed), the
endpoint is upserted by (host, port, SNI, STARTTLS), and the deployments of the
served chain are brought up to date. The functions here take a Connection inside a
transaction the caller owns, so several reports (or a report and its alerts) can
commit together.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, NamedTuple

import orjson
from cryptography import x509
from sqlalchemy import (
    Connection,
    Dialect,
    Integer,
    String,
    and_,
    bindparam,
    delete,
    false,
    func,
    literal_column,
    or_,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from certvigil.analysis.model import CertificateFacts, EndpointReport, Finding
from certvigil.errors import ObservationFormatError
from certvigil.observed.codec import crl_digest, observation_from_json, observation_to_dict
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.revocation import RevocationMethod
from certvigil.store.driver import (
    DriverStatement,
    json_text,
    positional_dialect,
    statements_for,
    time_binder,
)
from certvigil.store.models import (
    CERTIFICATES,
    DEPLOYMENTS,
    ENDPOINT_TAGS,
    ENDPOINTS,
    OBSERVATIONS,
    still_served,
    utc_from_sqlite_text,
)
from certvigil.store.packing import PackingError, pack, unpack
from certvigil.store.queries import tags_for
from certvigil.store.records import ObservationId, ObservationStatus
from certvigil.store.revocation_models import OBSERVATION_DOCUMENTS, REVOCATION_DOCUMENTS
from certvigil.store.sql_lists import chunks, one_of, one_of_parameter
from certvigil.store.stored_certificates import known_stored, seen_stored
from certvigil.targets.target import Target

_CERTS = CERTIFICATES
_ENDPOINTS = ENDPOINTS
_DEPLOYMENTS = DEPLOYMENTS
_OBSERVATIONS = OBSERVATIONS
_TAGS = ENDPOINT_TAGS


def dialect_insert(connection: Connection, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the connection's database."""
    return insert_for(connection.dialect.name, table)


def insert_for(dialect_name: str, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the database named ``dialect_name``."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def endpoint_key(target: Target) -> dict[str, Any]:
    """The endpoint's unique key columns; absent SNI/STARTTLS are stored as ``""``."""
    return {
        "host": target.host,
        "port": target.port,
        "sni": target.sni or "",
        "starttls": target.starttls.value if target.starttls is not None else "",
    }


def observed_at(report: EndpointReport) -> datetime:
    """When the report's handshake or failure happened (its evaluation time otherwise)."""
    if report.observation is not None:
        return report.observation.observed_at_utc
    if report.failure is not None:
        return report.failure.observed_at_utc
    return report.evaluated_at_utc


_CERTIFICATE_COLUMNS = (
    "sha256_hex",
    "subject",
    "subject_cn",
    "issuer",
    "issuer_cn",
    "serial_hex",
    "not_before_utc",
    "not_after_utc",
    "key_type",
    "key_bits",
    "signature_algorithm",
    "is_ca",
    "is_self_signed",
    "san_dns",
    "facts",
    "der",
    "first_seen_utc",
)


def certificate_row(
    facts: CertificateFacts, der: bytes | None, seen_utc: datetime
) -> dict[str, Any]:
    """The ``certificates`` row for one certificate's facts."""
    return dict(
        zip(
            _CERTIFICATE_COLUMNS,
            _certificate_values(facts, der, seen_utc, _same, _same, facts_to_json),
            strict=True,
        )
    )


def _certificate_values(
    facts: CertificateFacts,
    der: bytes | None,
    seen_utc: datetime,
    when: Callable[[datetime], Any],
    encode: Callable[[Any], Any],
    encode_facts: Callable[[CertificateFacts], Any],
) -> tuple[Any, ...]:
    """The ``certificates`` row in ``_CERTIFICATE_COLUMNS`` order; ``when`` converts
    times, ``encode`` the JSON columns' values (as ``_observation_values``) and
    ``encode_facts`` the facts."""
    return (
        facts.sha256_hex,
        facts.subject,
        facts.subject_cn,
        facts.issuer,
        facts.issuer_cn,
        facts.serial_hex,
        when(facts.not_before_utc),
        when(facts.not_after_utc),
        facts.key_type.value,
        facts.key_bits,
        facts.signature_algorithm,
        facts.is_ca,
        facts.is_self_signed,
        encode(list(facts.san_dns)),
        encode_facts(facts),
        der,
        when(seen_utc),
    )


def facts_json_text(facts: CertificateFacts) -> str:
    """The facts column's text: ``json_text(facts_to_json(facts))``, written by orjson
    from the dataclass itself (its fields in order, times in ISO 8601, tuples as
    arrays, enums as their values) in a third of the time."""
    try:
        return orjson.dumps(facts).decode("utf-8")
    except TypeError:  # what orjson cannot write (an integer beyond 64 bits)
        return json_text(facts_to_json(facts))


def facts_to_json(facts: CertificateFacts) -> dict[str, Any]:
    """CertificateFacts as JSON-ready values (datetimes as ISO 8601, tuples as lists)."""
    out: dict[str, Any] = {}
    for key in _FACT_FIELDS:
        value = getattr(facts, key)
        if type(value) in _JSON_SCALARS:
            out[key] = value
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, tuple):
            out[key] = list(value)
        elif isinstance(value, Enum):
            out[key] = value.value
        else:
            out[key] = value
    return out


_FACT_FIELDS = tuple(f.name for f in fields(CertificateFacts))
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """A finding as a JSON object."""
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "message": finding.message,
        "cert_index": finding.cert_index,
    }


_ENDPOINT_COLUMNS = (
    "host",
    "port",
    "sni",
    "starttls",
    "first_seen_utc",
    "last_seen_utc",
    "last_ok_utc",
    "last_status",
    "consecutive_failures",
    "current_certificate_sha256",
    "last_observation_id",
    "grade",
    "protocols",
    "revocation_status",
)
_OBSERVATION_COLUMNS = (
    "id",
    "endpoint_id",
    "observed_at_utc",
    "evaluated_at_utc",
    "status",
    "failure_kind",
    "failure_detail",
    "tls_alert",
    "peer_address",
    "protocol",
    "cipher",
    "alpn",
    "leaf_sha256",
    "chain_sha256",
    "is_trusted",
    "chain_error",
    "hostname_matches",
    "verdict",
    "findings",
    "connect_s",
    "handshake_s",
    "checks",
    "grade",
    "protocols",
    "revocation_status",
    "observation_z",
)
_DEPLOYMENT_COLUMNS = (
    "endpoint_id",
    "certificate_sha256",
    "chain_position",
    "not_after_utc",
    "first_seen_utc",
    "last_seen_utc",
)
_RETIRE_SLOTS = 8
_RETIRE_PARAMETERS = (
    "b_last_seen",
    "b_endpoint_id",
    *(f"b_served_{i}" for i in range(_RETIRE_SLOTS)),
)


class _Statements:
    """The ingest statements for one dialect, built once: building them costs more
    than running them."""

    def __init__(self, dialect: Dialect) -> None:
        dialect_name = dialect.name
        insert = functools.partial(insert_for, dialect_name)

        e, d = _ENDPOINTS.c, _DEPLOYMENTS.c
        # Known with their bytes: an observation may then name them by reference.
        self.known_certificates = select(_CERTS.c.sha256_hex).where(
            one_of_parameter(dialect_name, _CERTS.c.sha256_hex, "b_sha256"),
            _CERTS.c.der.is_not(None),
        )
        key = ["host", "port", "sni", "starttls"]
        # Observation ids are known before the endpoint upsert (see
        # _record_round), which then also records the endpoint's latest observation.
        # Constants are SQL literals, not parameters, so that the statements take
        # exactly one tuple of column values per row.
        ok = insert(_ENDPOINTS)
        endpoint_ok = ok.on_conflict_do_update(
            index_elements=key,
            set_={
                "last_seen_utc": ok.excluded.last_seen_utc,
                "last_status": ok.excluded.last_status,
                "last_ok_utc": ok.excluded.last_ok_utc,
                "consecutive_failures": literal_column("0"),
                "current_certificate_sha256": func.coalesce(
                    ok.excluded.current_certificate_sha256, e.current_certificate_sha256
                ),
                # A scan without the daily checks keeps the last grade and protocols.
                "grade": func.coalesce(ok.excluded.grade, e.grade),
                "protocols": func.coalesce(ok.excluded.protocols, e.protocols),
                "revocation_status": func.coalesce(
                    ok.excluded.revocation_status, e.revocation_status
                ),
                "last_observation_id": ok.excluded.last_observation_id,
            },
        )
        failed = insert(_ENDPOINTS)
        endpoint_failed = failed.on_conflict_do_update(
            index_elements=key,
            set_={
                "last_seen_utc": failed.excluded.last_seen_utc,
                "last_status": failed.excluded.last_status,
                "consecutive_failures": e.consecutive_failures + literal_column("1"),
                "last_observation_id": failed.excluded.last_observation_id,
            },
        )
        # A current deployment is seen whenever its endpoint is: its last sighting is
        # the endpoint's last_ok_utc (models.deployment_last_seen), so a chain served
        # again writes nothing here. At a million observations, rewriting each row
        # and its covering-index entry on every report was a fifth of the ingest time.
        deployments = insert(_DEPLOYMENTS).values(is_current=true())
        deployments = deployments.on_conflict_do_update(
            index_elements=["endpoint_id", "certificate_sha256"],
            set_={
                "last_seen_utc": deployments.excluded.last_seen_utc,
                "chain_position": deployments.excluded.chain_position,
                "is_current": true(),
            },
            where=or_(
                d.is_current.is_(False),
                d.chain_position != deployments.excluded.chain_position,
            ),
        )
        # (A current deployment has a last success to take; the row's own time
        # is kept should it not.)
        retired_seen = func.coalesce(
            bindparam("b_last_seen", type_=d.last_seen_utc.type), d.last_seen_utc
        )
        # A fixed number of parameters, padded by repeating the leaf, so that one
        # executemany retires the old deployments of a whole batch. A retired
        # deployment keeps the time it was last seen: its endpoint's last success
        # before this report.
        deployments_retired = (
            update(_DEPLOYMENTS)
            .where(
                and_(
                    d.endpoint_id == bindparam("b_endpoint_id"),
                    still_served(d.is_current),
                    d.certificate_sha256.not_in(
                        [bindparam(f"b_served_{i}") for i in range(_RETIRE_SLOTS)]
                    ),
                )
            )
            .values(is_current=false(), last_seen_utc=retired_seen)
        )
        self.deployments_retired_long = (
            update(_DEPLOYMENTS)
            .where(
                and_(
                    d.endpoint_id == bindparam("b_endpoint_id"),
                    still_served(d.is_current),
                    d.certificate_sha256.not_in(bindparam("b_served", expanding=True)),
                )
            )
            .values(is_current=False, last_seen_utc=retired_seen)
        )
        self.current_deployments = _current_deployments(dialect_name)
        positional = positional_dialect(dialect)
        # A certificate stored without its bytes (its facts came without them) gets
        # them the first time they are served: stored observations refer to them.
        certificate = insert(_CERTS)
        self.certificates = DriverStatement(
            certificate.on_conflict_do_update(
                index_elements=["sha256_hex"],
                set_={"der": certificate.excluded.der},
                where=_CERTS.c.der.is_(None) & certificate.excluded.der.is_not(None),
            ),
            positional,
            _CERTIFICATE_COLUMNS,
        )
        self.endpoint_ok = DriverStatement(endpoint_ok, positional, _ENDPOINT_COLUMNS)
        self.endpoint_failed = DriverStatement(endpoint_failed, positional, _ENDPOINT_COLUMNS)
        self.observation = DriverStatement(_OBSERVATIONS.insert(), positional, _OBSERVATION_COLUMNS)
        self.deployments = DriverStatement(deployments, positional, _DEPLOYMENT_COLUMNS)
        self.observation_documents = DriverStatement(
            OBSERVATION_DOCUMENTS.insert(), positional, ("observation_id", "document_sha256")
        )
        self.deployments_retired = DriverStatement(
            deployments_retired, positional, _RETIRE_PARAMETERS
        )
        self.tags = DriverStatement(_TAGS.insert(), positional, ("endpoint_id", "tag"))
        # Times go to SQLite as its own UTC text and to psycopg as aware datetimes;
        # JSON columns as JSON text either way.
        self.on_sqlite = dialect_name == "sqlite"
        self.when: Callable[[datetime], Any] = time_binder(dialect_name)
        if self.on_sqlite:
            self.last_observation_id: Any = select(func.max(_OBSERVATIONS.c.id))
            # The last success as stored (text), bound back unchanged when retiring.
            self.endpoint_ids = select(
                e.id, e.host, e.port, e.sni, e.starttls, type_coerce(e.last_ok_utc, String)
            ).where(one_of_parameter(dialect_name, e.host, "b_hosts"))
        else:
            self.new_observation_ids: Any = select(
                func.nextval(func.pg_get_serial_sequence("observations", "id"))
            ).select_from(func.generate_series(1, bindparam("b_count", type_=Integer)))
            self.endpoint_ids = select(
                e.id, e.host, e.port, e.sni, e.starttls, e.last_ok_utc
            ).where(one_of_parameter(dialect_name, e.host, "b_hosts"))

    def observation_ids(self, connection: Connection, count: int) -> list[int]:
        """``count`` ids for new observations, taken before they are inserted."""
        if self.on_sqlite:
            # The write transaction holds SQLite's lock, so nobody else can take these
            # ids: they are the ones SQLite would pick itself (one past the largest).
            first = (connection.execute(self.last_observation_id).scalar() or 0) + 1
            return list(range(first, first + count))
        # Taken from the column's own sequence: no other writer gets them.
        return list(connection.execute(self.new_observation_ids, {"b_count": count}).scalars())

    def endpoints_of(
        self, connection: Connection, hosts: Sequence[str]
    ) -> dict[tuple[str, int, str, str], tuple[int, Any]]:
        """The id and last success (as bound back: text on SQLite) of the endpoints on
        ``hosts``, by key."""
        return {
            (host, port, sni, starttls): (endpoint_id, last_ok)
            for endpoint_id, host, port, sni, starttls, last_ok in connection.execute(
                self.endpoint_ids, {"b_hosts": sorted(set(hosts))}
            ).all()
        }


def _current_deployments(dialect_name: str) -> Any:
    """What the endpoints bound to ``b_endpoint_ids`` serve now: (endpoint, SHA-256,
    position).

    On PostgreSQL each endpoint is looked up through the ``(endpoint_id, ...)`` index
    in turn (a lateral subquery that ``OFFSET 0`` keeps from being merged into a
    join). Written as ``endpoint_id IN (SELECT unnest(...))``, the planner hashed the
    ids and read the whole table whenever it had no statistics yet (a new database
    written faster than autovacuum looks at it) or a plan was made for the bound ids
    (100 index probes priced above scanning thousands of rows): 3.3 ms a batch at
    20,000 deployments against 0.2-0.5 ms through the index.
    """
    d = _DEPLOYMENTS.c
    if dialect_name != "postgresql":
        return select(d.endpoint_id, d.certificate_sha256, d.chain_position).where(
            and_(
                one_of_parameter(dialect_name, d.endpoint_id, "b_endpoint_ids"),
                still_served(d.is_current),
            )
        )
    wanted = (
        func.unnest(bindparam("b_endpoint_ids", type_=postgresql.ARRAY(d.endpoint_id.type)))
        .table_valued("id")
        .render_derived()
    )
    served = (
        select(d.endpoint_id, d.certificate_sha256, d.chain_position)
        .where(and_(d.endpoint_id == wanted.c.id, still_served(d.is_current)))
        .offset(0)
        .lateral()
    )
    return select(
        served.c.endpoint_id, served.c.certificate_sha256, served.c.chain_position
    ).select_from(wanted.join(served, true()))


_STATEMENTS: dict[str, _Statements] = {}


def _statements(connection: Connection) -> _Statements:
    return statements_for(connection, _STATEMENTS, _Statements)


def record_report(
    connection: Connection, report: EndpointReport, *, tags: Iterable[str] | None = None
) -> ObservationId:
    """Writes one report as one observation; the caller commits.

    Args:
        connection: A connection inside a write transaction.
        report: The scan result.
        tags: The endpoint's labels, replacing any it had; ``None`` leaves them as
            they are.

    Returns:
        The new observation's id.
    """
    (observation_id,) = record_reports(
        connection, [report], tags=None if tags is None else {report.target: tags}
    )
    return observation_id


@dataclass(frozen=True, slots=True)
class PreparedReports:
    """Reports encoded for the store (their observations packed, their rows' facts
    taken) before the write transaction, so that a writer holds the database's lock
    only for the SQL: see :func:`prepare_reports`."""

    items: tuple[_Prepared, ...]

    def __len__(self) -> int:
        return len(self.items)


def prepare_reports(reports: Sequence[EndpointReport]) -> PreparedReports:
    """The encoding :func:`record_reports` does first, done ahead (no database)."""
    return PreparedReports(tuple(_Prepared.of(report) for report in reports))


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedEndpoint:
    """An endpoint as :func:`record_reports` left it.

    Attributes:
        endpoint_id: Its id.
        labels: Its labels as now stored (sorted) when the batch set them, ``None``
            when it left them as they were.
        is_new: The batch created its row: nothing was stored about it before (an
            endpoint's observations and labels are deleted with its row, and its alerts
            are detached from it).
    """

    endpoint_id: int
    labels: tuple[str, ...] | None
    is_new: bool


def record_reports(
    connection: Connection,
    reports: Sequence[EndpointReport] | PreparedReports,
    *,
    tags: Mapping[Target, Iterable[str]] | None = None,
    endpoints: dict[tuple[str, int, str, str], RecordedEndpoint] | None = None,
) -> tuple[ObservationId, ...]:
    """Writes reports as observations, a handful of statements for the whole batch.

    Reports of the same endpoint are applied in the order given. Observations recorded
    out of time order are kept, but an endpoint's summary (last seen, status, current
    certificate) follows the last report recorded.

    Args:
        connection: A connection inside a write transaction.
        reports: The scan results, or the same already encoded by
            :func:`prepare_reports` outside the transaction.
        tags: Labels per target, replacing their current ones; targets absent from
            the mapping (or from ``reports``) keep theirs.
        endpoints: When given, receives each reported endpoint (its id; when ``tags``
            set them, its labels as now stored, sorted, else ``None``; whether this
            batch created its row), by the endpoint's key (:func:`endpoint_key_tuple`).

    Returns:
        The new observations' ids, in the order of ``reports``.
    """
    if not reports:
        return ()
    statements = _statements(connection)
    prepared = (
        reports.items
        if isinstance(reports, PreparedReports)
        else [_Prepared.of(report) for report in reports]
    )
    _store_certificates(connection, statements, prepared)
    observation_ids = [0] * len(prepared)
    endpoint_ids: dict[tuple[str, int, str, str], int] = {}
    created: set[tuple[str, int, str, str]] = set()
    for indexes in _rounds(prepared):
        _record_round(
            connection, statements, prepared, indexes, observation_ids, endpoint_ids, created
        )
    _store_documents(connection, statements, prepared, observation_ids)
    wanted_tags: dict[int, Iterable[str]] = {}
    for target, labels in (tags or {}).items():
        endpoint_id = endpoint_ids.get(_key_tuple(target))
        if endpoint_id is not None:
            wanted_tags[endpoint_id] = labels
    written = set_tags_many(
        connection, wanted_tags, unlabelled={endpoint_ids[key] for key in created}
    )
    if endpoints is not None:
        for key, endpoint_id in endpoint_ids.items():
            endpoints[key] = RecordedEndpoint(
                endpoint_id=endpoint_id, labels=written.get(endpoint_id), is_new=key in created
            )
    return tuple(observation_ids)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckColumns:
    """What a report's optional checks found, as the store's columns hold it.

    Attributes:
        names: The checks that ran, comma-separated (``cert,revocation,protocols,grade``).
        grade: The grade, ``None`` when protocols were not probed.
        protocols: Accepted protocols, comma-separated oldest first; ``None`` when not
            probed.
        revocation_status: ``revoked`` when any served certificate is, else the leaf's
            status; ``None`` when revocation was not checked.
    """

    names: str
    grade: str | None = None
    protocols: str | None = None
    revocation_status: str | None = None

    @classmethod
    def of(cls, report: EndpointReport) -> CheckColumns:
        """The columns of ``report``."""
        names = ["cert"]
        status: str | None = None
        if report.revocation is not None:
            names.append("revocation")
            leaf = report.revocation.leaf_status
            status = (
                "revoked"
                if report.revocation.is_revoked
                else (leaf.value if leaf is not None else None)
            )
        grade = protocols = None
        if report.deep is not None:
            names += ["protocols", "grade"]
            grade = report.deep.grade.grade
            protocols = ",".join(p.value for p in report.deep.tls_config.protocols)
        return cls(
            names=",".join(names), grade=grade, protocols=protocols, revocation_status=status
        )


class _Served(NamedTuple):
    """One certificate of a report's chain, once: where it was served, its facts, and
    its bytes when the served bytes have the facts' fingerprint."""

    position: int
    facts: CertificateFacts
    der: bytes | None


@dataclass(frozen=True, slots=True)
class _Prepared:
    report: EndpointReport
    key_tuple: tuple[str, int, str, str]
    seen: datetime
    is_ok: bool
    chain: list[_Served]
    checks: CheckColumns
    observation_z: bytes | None
    crls: dict[str, bytes]
    crl_urls: dict[str, tuple[str, datetime]]

    @classmethod
    def of(cls, report: EndpointReport) -> _Prepared:
        crls: dict[str, bytes] = {}
        observed = report.observed
        chain = _served_chain(report)
        # The chain's certificates are stored once in ``certificates`` (with their
        # bytes, _store_certificates); the stored observation names them.
        digests = {c.der: c.facts.sha256_hex for c in chain if c.der is not None}
        packed = pack_observation(observed, crls, digests) if observed is not None else None
        return cls(
            report=report,
            key_tuple=_key_tuple(report.target),
            seen=observed_at(report),
            is_ok=report.observation is not None,
            chain=chain,
            checks=CheckColumns.of(report),
            observation_z=packed,
            crls=crls,
            crl_urls=_crl_sources(observed) if crls and observed is not None else {},
        )


MAX_STORED_OBSERVATION_BYTES = 64 * 1024 * 1024
"""Largest stored observation read back (decompressed): a bound against a bad row."""


def pack_observation(
    observation: EndpointObservation,
    crls: dict[str, bytes],
    certificate_digests: Mapping[bytes, str] | None = None,
) -> bytes:
    """The stored form of an observation: its versioned JSON (``certvigil.observation/1``),
    compressed (``store.packing``), with CRLs left out (into ``crls``, by SHA-256) to be
    stored once, and the certificates of ``certificate_digests`` (their SHA-256 by their
    bytes: those the ``certificates`` table holds with their bytes) named by reference.

    The JSON is the compact text :func:`observation_to_json` writes, encoded by orjson
    (several times faster than ``json``; non-ASCII characters as UTF-8 rather than
    ``\\u`` escapes, which read back the same)."""
    document = observation_to_dict(observation, crls=crls, certificate_digests=certificate_digests)
    try:
        raw = orjson.dumps(document)
    except TypeError:  # an integer beyond 64 bits: json writes any
        raw = json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return pack(raw)


def unpack_observation(
    packed: bytes,
    crls: Mapping[str, bytes],
    certificates: Mapping[str, bytes] | None = None,
) -> EndpointObservation:
    """The observation :func:`pack_observation` stored, its CRLs taken from ``crls`` and
    the certificates it names from ``certificates`` (bytes by SHA-256).

    Raises:
        ObservationFormatError: The stored bytes are not a readable observation.
    """
    try:
        text = unpack(packed, MAX_STORED_OBSERVATION_BYTES).decode("utf-8")
    except (PackingError, UnicodeDecodeError) as exc:
        raise ObservationFormatError("observation_z", f"not a stored observation: {exc}") from exc
    return observation_from_json(text, crls=crls, certificates=certificates)


def _crl_sources(observation: EndpointObservation) -> dict[str, tuple[str, datetime]]:
    """Each CRL's URL and fetch time, by the SHA-256 of its bytes."""
    found: dict[str, tuple[str, datetime]] = {}
    revocation = observation.revocation
    if revocation is None:
        return found
    for certificate in revocation.certificates:
        for fetch in certificate.fetches:
            if fetch.method is RevocationMethod.CRL and fetch.response_der is not None:
                sha = crl_digest(fetch.response_der)
                found.setdefault(sha, (fetch.url, fetch.fetched_at_utc))
    return found


def _store_documents(
    connection: Connection,
    statements: _Statements,
    prepared: Sequence[_Prepared],
    observation_ids: Sequence[int],
) -> None:
    """CRLs once by digest, and which observation used which."""
    documents: dict[str, tuple[bytes, str | None, datetime]] = {}
    links: list[tuple[int, str]] = []
    for item, observation_id in zip(prepared, observation_ids, strict=True):
        for sha, der in item.crls.items():
            url, fetched = item.crl_urls.get(sha, (None, item.seen))
            documents.setdefault(sha, (der, url, fetched))
            links.append((observation_id, sha))
    if not documents:
        return
    table = REVOCATION_DOCUMENTS
    wanted = list(documents)
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        known.update(
            connection.execute(
                select(table.c.sha256_hex).where(
                    one_of(connection.dialect.name, table.c.sha256_hex, wanted[start : start + 500])
                )
            ).scalars()
        )
    rows = [
        {
            "sha256_hex": sha,
            "kind": "crl",
            "url": url,
            "fetched_at_utc": fetched,
            "next_update_utc": _crl_next_update(der),
            "der_z": pack(der),
        }
        for sha, (der, url, fetched) in documents.items()
        if sha not in known
    ]
    if rows:
        connection.execute(
            dialect_insert(connection, table).on_conflict_do_nothing(index_elements=["sha256_hex"]),
            rows,
        )
    statements.observation_documents.run(connection, links)


def _crl_next_update(der: bytes) -> datetime | None:
    """A CRL's nextUpdate (aware UTC), ``None`` when it has none or does not parse."""
    try:
        return x509.load_der_x509_crl(der).next_update_utc
    except ValueError:
        return None


def endpoint_key_tuple(target: Target) -> tuple[str, int, str, str]:
    """The endpoint's key columns as stored (absent SNI and STARTTLS as ``""``)."""
    return _key_tuple(target)


def _key_tuple(target: Target) -> tuple[str, int, str, str]:
    return (
        target.host,
        target.port,
        target.sni or "",
        target.starttls.value if target.starttls is not None else "",
    )


def _rounds(prepared: Sequence[_Prepared]) -> list[list[int]]:
    """Splits a batch so that each endpoint appears at most once per round."""
    rounds: list[tuple[set[tuple[str, int, str, str]], list[int]]] = []
    last_round: dict[tuple[str, int, str, str], int] = {}
    for index, item in enumerate(prepared):
        key = item.key_tuple
        number = last_round.get(key, -1) + 1
        if number == len(rounds):
            rounds.append((set(), []))
        rounds[number][0].add(key)
        rounds[number][1].append(index)
        last_round[key] = number
    return [indexes for _, indexes in rounds]


def _store_certificates(
    connection: Connection, statements: _Statements, prepared: Sequence[_Prepared]
) -> None:
    first: dict[str, tuple[CertificateFacts, bytes | None, datetime]] = {}
    for item in prepared:
        for served in item.chain:
            sha = served.facts.sha256_hex
            found = first.get(sha)
            if found is None or (found[1] is None and served.der is not None):
                first[sha] = (served.facts, served.der, item.seen)
    # Most batches bring certificates already stored: those seen stored before are
    # skipped, the others looked up before rows are built.
    stored = known_stored(connection)
    wanted = [sha for sha in first if sha not in stored]
    if not wanted:
        return
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        known.update(
            connection.execute(
                statements.known_certificates, {"b_sha256": wanted[start : start + 500]}
            ).scalars()
        )
    rows = [
        _certificate_values(*first[sha], statements.when, json_text, facts_json_text)
        for sha in wanted
        if sha not in known
    ]
    if rows:
        statements.certificates.run(connection, rows)
    # Stored with their bytes now: those found so, and those just written with them.
    seen_stored(connection, [*known, *(sha for sha in wanted if first[sha][1] is not None)])


def _record_round(
    connection: Connection,
    statements: _Statements,
    prepared: Sequence[_Prepared],
    indexes: list[int],
    observation_ids: list[int],
    endpoint_ids: dict[tuple[str, int, str, str], int],
    created: set[tuple[str, int, str, str]],
) -> None:
    """One round (each endpoint at most once): ids taken first, rows written as
    tuples through the driver (DriverStatement). The keys of endpoints this round
    creates are added to ``created``.

    Neither database can be asked for the ids of a multi-row upsert in parameter
    order (SQLite does not promise the order of RETURNING rows; an updated endpoint
    keeps its old id), so the observations' ids are taken before anything is
    written, and the endpoints' are read by their keys: before the upsert, with
    each one's last success (the time its retired deployments were last seen), and
    once more after it only when some endpoints are new.
    """
    when = statements.when
    for offset, new_id in enumerate(statements.observation_ids(connection, len(indexes))):
        observation_ids[indexes[offset]] = new_id
    hosts = [prepared[i].key_tuple[0] for i in indexes]
    before = statements.endpoints_of(connection, hosts)
    for is_ok in (True, False):
        rows = [
            _endpoint_values(prepared[i], observation_ids[i], when)
            for i in indexes
            if prepared[i].is_ok is is_ok
        ]
        if rows:
            statement = statements.endpoint_ok if is_ok else statements.endpoint_failed
            statement.run(connection, rows)
    found = before
    new_keys = [prepared[i].key_tuple for i in indexes if prepared[i].key_tuple not in before]
    if new_keys:
        created.update(new_keys)
        found = statements.endpoints_of(connection, hosts)
    round_endpoint = {index: found[prepared[index].key_tuple][0] for index in indexes}
    for index in indexes:
        endpoint_ids[prepared[index].key_tuple] = round_endpoint[index]
    statements.observation.run(
        connection,
        [
            _observation_values(prepared[i], round_endpoint[i], observation_ids[i], when, json_text)
            for i in indexes
        ],
    )
    served = [i for i in indexes if prepared[i].is_ok and prepared[i].chain]
    if not served:
        return
    # What each endpoint serves now, read once: a chain served again writes nothing,
    # and only endpoints whose chain changed retire deployments.
    current: dict[int, dict[str, int]] = {}
    known = sorted({round_endpoint[i] for i in served if prepared[i].key_tuple in before})
    for chunk in chunks(known):
        for endpoint_id, sha, position in connection.execute(
            statements.current_deployments, {"b_endpoint_ids": chunk}
        ).all():
            current.setdefault(endpoint_id, {})[sha] = position
    deployed: list[tuple[Any, ...]] = []
    retired: list[tuple[Any, ...]] = []
    for i in served:
        item, endpoint_id = prepared[i], round_endpoint[i]
        serving = current.get(endpoint_id, {})
        deployed += [
            values
            for values in _deployment_values(item, endpoint_id, when)
            if serving.get(values[1]) != values[2]
        ]
        if serving.keys() - {served.facts.sha256_hex for served in item.chain}:
            last_ok = before[item.key_tuple][1]
            values = _retire_values(connection, statements, item, endpoint_id, last_ok)
            if values is not None:
                retired.append(values)
    if deployed:
        statements.deployments.run(connection, deployed)
    if retired:
        statements.deployments_retired.run(connection, retired)


def _same(value: Any) -> Any:
    return value


def _retire_values(
    connection: Connection,
    statements: _Statements,
    item: _Prepared,
    endpoint_id: int,
    last_seen: Any,
) -> tuple[Any, ...] | None:
    """Parameters retiring the endpoint's deployments not in ``item``'s chain, as
    last seen at ``last_seen`` (the endpoint's last success before ``item``, as bound).

    A chain longer than the statement's slots is retired at once, on its own, and
    ``None`` returned.
    """
    shas = [served.facts.sha256_hex for served in item.chain]
    if len(shas) > _RETIRE_SLOTS:
        if statements.on_sqlite and last_seen is not None:  # as stored, back to a time
            last_seen = utc_from_sqlite_text(last_seen)
        connection.execute(
            statements.deployments_retired_long,
            {"b_last_seen": last_seen, "b_endpoint_id": endpoint_id, "b_served": shas},
        )
        return None
    return (last_seen, endpoint_id, *shas, *[shas[0]] * (_RETIRE_SLOTS - len(shas)))


def _endpoint_values(
    item: _Prepared, observation_id: int | None, when: Callable[[datetime], Any]
) -> tuple[Any, ...]:
    """The endpoint row, in ``_ENDPOINT_COLUMNS`` order; ``when`` converts times."""
    leaf = item.report.leaf
    seen = when(item.seen)
    host, port, sni, starttls = item.key_tuple
    return (
        host,
        port,
        sni,
        starttls,
        seen,
        seen,
        seen if item.is_ok else None,
        (ObservationStatus.OK if item.is_ok else ObservationStatus.FAILED).value,
        0 if item.is_ok else 1,
        leaf.sha256_hex if item.is_ok and leaf is not None else None,
        observation_id,
        item.checks.grade,
        item.checks.protocols,
        item.checks.revocation_status,
    )


def _observation_values(
    item: _Prepared,
    endpoint_id: int,
    observation_id: int | None,
    when: Callable[[datetime], Any],
    encode: Callable[[Any], Any],
) -> tuple[Any, ...]:
    """The observation row, in ``_OBSERVATION_COLUMNS`` order.

    ``when`` converts times and ``encode`` the JSON columns' values, for rows that
    bypass SQLAlchemy's type handling (``DriverStatement``).
    """
    report = item.report
    observation = report.observation
    failure = report.failure
    leaf = report.leaf
    chain = report.chain
    return (
        observation_id,
        endpoint_id,
        when(item.seen),
        when(report.evaluated_at_utc),
        (ObservationStatus.OK if item.is_ok else ObservationStatus.FAILED).value,
        failure.kind.value if failure is not None else None,
        failure.detail if failure is not None else None,
        failure.tls_alert if failure is not None else None,
        (
            observation.peer_address
            if observation is not None
            else failure.peer_address
            if failure is not None
            else None
        ),
        observation.protocol if observation is not None else None,
        observation.cipher if observation is not None else None,
        observation.alpn if observation is not None else None,
        leaf.sha256_hex if leaf is not None else None,
        encode([c.sha256_hex for c in report.certificates]),
        chain.is_trusted if chain is not None else None,
        chain.error if chain is not None else None,
        report.hostname_matches,
        report.verdict.value,
        encode([finding_to_json(f) for f in report.findings]),
        observation.connect_s if observation is not None else None,
        observation.handshake_s if observation is not None else None,
        item.checks.names,
        item.checks.grade,
        item.checks.protocols,
        item.checks.revocation_status,
        item.observation_z,
    )


def _deployment_values(
    item: _Prepared, endpoint_id: int, when: Callable[[datetime], Any]
) -> list[tuple[Any, ...]]:
    """The deployment rows of ``item``'s chain, in ``_DEPLOYMENT_COLUMNS`` order."""
    seen = when(item.seen)
    return [
        (endpoint_id, facts.sha256_hex, position, when(facts.not_after_utc), seen, seen)
        for position, facts, _ in item.chain
    ]


def _served_chain(report: EndpointReport) -> list[_Served]:
    """Each certificate of the report once, at the position it was served, with the
    served bytes that have its fingerprint.

    ``report.certificates`` holds the certificates that parsed: one that did not
    shifts the rest, so each is found among the served bytes by its SHA-256. Facts
    that no served bytes match (a report built by hand) keep their index and no bytes.
    """
    observation = report.observation
    served: dict[str, tuple[int, bytes | None]] = {}
    if observation is not None:
        for index, served_der in enumerate(observation.chain_der):
            served.setdefault(hashlib.sha256(served_der).hexdigest(), (index, served_der))
    seen: set[str] = set()
    chain: list[_Served] = []
    for index, facts in enumerate(report.certificates):
        sha = facts.sha256_hex
        if sha not in seen:
            seen.add(sha)
            position, der = served.get(sha, (index, None))
            chain.append(_Served(position, facts, der))
    return chain


def set_tags_many(
    connection: Connection,
    tags: Mapping[int, Iterable[str]],
    *,
    unlabelled: Collection[int] = (),
) -> dict[int, tuple[str, ...]]:
    """Makes each endpoint's labels exactly its ``tags`` (as :func:`set_tags`), with one
    read for all of them and one statement for each kind of change.

    Args:
        connection: A connection inside a write transaction.
        tags: Labels per endpoint id; blanks are dropped and duplicates merged.
        unlabelled: Endpoints known to have no labels (created in this transaction),
            whose labels are not read.

    Returns:
        Each endpoint's labels as now stored, sorted.
    """
    if not tags:
        return {}
    wanted = {
        endpoint_id: {t.strip() for t in labels if t.strip()}
        for endpoint_id, labels in tags.items()
    }
    ids = sorted(wanted)
    stored = tags_for(connection, (i for i in ids if i not in unlabelled))
    current = {endpoint_id: set(stored.get(endpoint_id, ())) for endpoint_id in ids}
    stale = [
        {"b_endpoint_id": endpoint_id, "b_tag": tag}
        for endpoint_id in ids
        for tag in sorted(current[endpoint_id] - wanted[endpoint_id])
    ]
    new = [
        (endpoint_id, tag)
        for endpoint_id in ids
        for tag in sorted(wanted[endpoint_id] - current[endpoint_id])
    ]
    if stale:
        connection.execute(
            delete(_TAGS).where(
                and_(
                    _TAGS.c.endpoint_id == bindparam("b_endpoint_id"),
                    _TAGS.c.tag == bindparam("b_tag"),
                )
            ),
            stale,
        )
    if new:
        # Through the driver: a new fleet labels every endpoint in its first batch,
        # and SQLAlchemy's executemany of dictionaries cost more than the rest of
        # the endpoints' rows (38 µs per report on PostgreSQL).
        _statements(connection).tags.run(connection, new)
    return {endpoint_id: tuple(sorted(labels)) for endpoint_id, labels in wanted.items()}


def set_tags(connection: Connection, endpoint_id: int, tags: Iterable[str]) -> None:
    """Makes an endpoint's labels exactly ``tags``.

    Args:
        connection: A connection inside a write transaction.
        endpoint_id: The endpoint.
        tags: The labels; blanks are dropped and duplicates merged.
    """
    wanted = sorted({t.strip() for t in tags if t.strip()})
    current = set(
        connection.execute(select(_TAGS.c.tag).where(_TAGS.c.endpoint_id == endpoint_id))
        .scalars()
        .all()
    )
    if current == set(wanted):
        return
    stale = current.difference(wanted)
    if stale:
        connection.execute(
            delete(_TAGS).where(and_(_TAGS.c.endpoint_id == endpoint_id, _TAGS.c.tag.in_(stale)))
        )
    new = [t for t in wanted if t not in current]
    if new:
        connection.execute(
            _TAGS.insert(), [{"endpoint_id": endpoint_id, "tag": tag} for tag in new]
        )
