"""The CT watch's tables: per-log state, findings and their sightings, known names, CAs.

Same declarative base and naming convention as ``store.models`` (one metadata, one
migration chain). The watch commits a batch's findings, sightings and the log's new
position in one transaction, so a restart resumes exactly after the last committed
entry: nothing skipped, nothing alerted twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from certvigil.store.models import Base, IdType, _table


class CtLogStateRow(Base):
    """Where the watch of one log stands (``certvigil ct status`` reads it).

    ``position`` is the next entry to read: every entry before it is processed and its
    findings are committed. ``tree_size``/``root_hash`` are the last verified tree head.
    """

    __tablename__ = "ct_log_states"

    log_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(BigInteger)
    tree_size: Mapped[int | None] = mapped_column(BigInteger)
    root_hash: Mapped[bytes] = mapped_column(LargeBinary)
    head_timestamp_ms: Mapped[int] = mapped_column(BigInteger)
    last_entry_timestamp_ms: Mapped[int | None] = mapped_column(BigInteger)
    last_success_utc: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text)
    last_error_utc: Mapped[datetime | None]
    errors_total: Mapped[int] = mapped_column(Integer)
    malformed: Mapped[int] = mapped_column(BigInteger)
    entries_per_second: Mapped[float | None] = mapped_column(Float)
    frontier: Mapped[list[str] | None] = mapped_column(JSON)
    updated_at_utc: Mapped[datetime]


class CtFindingRow(Base):
    """A certificate (or precertificate) for watched names, once however often it is seen.

    Its dedup keys are unique: a precertificate and its final certificate, and the same
    certificate in several logs, share them; a renewal of the same names by the same
    CA shares ``renewal_key``. Later sightings are rows of ``ct_sightings``.
    """

    __tablename__ = "ct_findings"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    sha256_hex: Mapped[str] = mapped_column(String(64))
    issuer_serial_key: Mapped[str] = mapped_column(String(64), unique=True)
    tbs_key: Mapped[str] = mapped_column(String(64), unique=True)
    renewal_key: Mapped[str] = mapped_column(String(64), index=True)
    serial_hex: Mapped[str] = mapped_column(String(128))
    issuer: Mapped[str] = mapped_column(Text)
    issuer_spki_sha256: Mapped[str | None] = mapped_column(String(64))
    names: Mapped[list[str]] = mapped_column(JSON)
    watched: Mapped[list[str]] = mapped_column(JSON)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    is_precert: Mapped[bool] = mapped_column(Boolean)
    not_before_utc: Mapped[datetime | None]
    not_after_utc: Mapped[datetime | None]
    log_id: Mapped[str] = mapped_column(String(64))
    log_description: Mapped[str] = mapped_column(Text)
    entry_index: Mapped[int] = mapped_column(BigInteger)
    logged_at_utc: Mapped[datetime]
    found_at_utc: Mapped[datetime] = mapped_column(index=True)


class CtSightingRow(Base):
    """One log entry that matched the watch: the first sighting of a finding, or a later one.

    ``(log_id, entry_index)`` is unique: an entry is processed once.
    """

    __tablename__ = "ct_sightings"
    __table_args__ = (UniqueConstraint("log_id", "entry_index", name="uq_ct_sightings_entry"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("ct_findings.id", ondelete="CASCADE"), index=True
    )
    log_id: Mapped[str] = mapped_column(String(64))
    entry_index: Mapped[int] = mapped_column(BigInteger)
    is_precert: Mapped[bool] = mapped_column(Boolean)
    sha256_hex: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str] = mapped_column(String(32))
    seen_at_utc: Mapped[datetime]


class CtKnownNameRow(Base):
    """A name already seen for a watched domain (configured, in the inventory, or in CT)."""

    __tablename__ = "ct_known_names"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    domain: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(16))
    first_seen_utc: Mapped[datetime]


class CtAuthorizedCaRow(Base):
    """A CA allowed to issue for a watched domain (``ct baseline``, ``ct authorize-ca``)."""

    __tablename__ = "ct_authorized_cas"
    __table_args__ = (UniqueConstraint("domain", "ca", name="uq_ct_authorized_cas_pair"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    domain: Mapped[str] = mapped_column(String(255))
    ca: Mapped[str] = mapped_column(String(1024))
    source: Mapped[str] = mapped_column(String(16))
    added_at_utc: Mapped[datetime]


class CtIssuerRow(Base):
    """An issuer certificate a static log serves at ``issuer/<sha256>``: fetched once, kept.

    The key is the SHA-256 of ``der`` (checked when fetched and when loaded), so a row is
    the same certificate for every log and forever.
    """

    __tablename__ = "ct_issuers"

    sha256_hex: Mapped[str] = mapped_column(String(64), primary_key=True)
    der: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen_utc: Mapped[datetime]


CT_LOG_STATES = _table(CtLogStateRow)
CT_FINDINGS = _table(CtFindingRow)
CT_SIGHTINGS = _table(CtSightingRow)
CT_KNOWN_NAMES = _table(CtKnownNameRow)
CT_AUTHORIZED_CAS = _table(CtAuthorizedCaRow)
CT_ISSUERS = _table(CtIssuerRow)
