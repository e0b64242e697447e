"""CT watch: per-log state, findings and sightings, known names, authorised CAs

``ct_log_states`` holds each log's position and last verified tree head, ``ct_findings``
each certificate for watched names once (unique dedup keys), ``ct_sightings`` every log
entry that matched (unique per log and index), ``ct_known_names`` the names not new any
more, ``ct_authorized_cas`` the CAs allowed per watched domain.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Applies this revision."""
    op.create_table(
        "ct_authorized_cas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("ca", sa.String(length=1024), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "added_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_authorized_cas")),
        sa.UniqueConstraint("domain", "ca", name="uq_ct_authorized_cas_pair"),
    )
    op.create_table(
        "ct_findings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("sha256_hex", sa.String(length=64), nullable=False),
        sa.Column("issuer_serial_key", sa.String(length=64), nullable=False),
        sa.Column("tbs_key", sa.String(length=64), nullable=False),
        sa.Column("renewal_key", sa.String(length=64), nullable=False),
        sa.Column("serial_hex", sa.String(length=128), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("issuer_spki_sha256", sa.String(length=64), nullable=True),
        sa.Column("names", sa.JSON(), nullable=False),
        sa.Column("watched", sa.JSON(), nullable=False),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("is_precert", sa.Boolean(), nullable=False),
        sa.Column(
            "not_before_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "not_after_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("log_id", sa.String(length=64), nullable=False),
        sa.Column("log_description", sa.Text(), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.Column(
            "logged_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "found_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_findings")),
        sa.UniqueConstraint("issuer_serial_key", name=op.f("uq_ct_findings_issuer_serial_key")),
        sa.UniqueConstraint("tbs_key", name=op.f("uq_ct_findings_tbs_key")),
    )
    op.create_index(
        op.f("ix_ct_findings_found_at_utc"), "ct_findings", ["found_at_utc"], unique=False
    )
    op.create_index(
        op.f("ix_ct_findings_renewal_key"), "ct_findings", ["renewal_key"], unique=False
    )
    op.create_table(
        "ct_known_names",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("domain", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column(
            "first_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_ct_known_names")),
    )
    op.create_table(
        "ct_log_states",
        sa.Column("log_id", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=True),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("head_timestamp_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_entry_timestamp_ms", sa.BigInteger(), nullable=True),
        sa.Column(
            "last_success_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column(
            "last_error_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("errors_total", sa.Integer(), nullable=False),
        sa.Column("malformed", sa.BigInteger(), nullable=False),
        sa.Column("entries_per_second", sa.Float(), nullable=True),
        sa.Column("frontier", sa.JSON(), nullable=True),
        sa.Column(
            "updated_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("log_id", name=op.f("pk_ct_log_states")),
    )
    op.create_table(
        "ct_sightings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "finding_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("log_id", sa.String(length=64), nullable=False),
        sa.Column("entry_index", sa.BigInteger(), nullable=False),
        sa.Column("is_precert", sa.Boolean(), nullable=False),
        sa.Column("sha256_hex", sa.String(length=64), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.Column("seen_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["ct_findings.id"],
            name=op.f("fk_ct_sightings_finding_id_ct_findings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_sightings")),
        sa.UniqueConstraint("log_id", "entry_index", name="uq_ct_sightings_entry"),
    )
    op.create_index(
        op.f("ix_ct_sightings_finding_id"), "ct_sightings", ["finding_id"], unique=False
    )


def downgrade() -> None:
    """Reverts this revision."""
    op.drop_index(op.f("ix_ct_sightings_finding_id"), table_name="ct_sightings")
    op.drop_table("ct_sightings")
    op.drop_table("ct_log_states")
    op.drop_table("ct_known_names")
    op.drop_index(op.f("ix_ct_findings_renewal_key"), table_name="ct_findings")
    op.drop_index(op.f("ix_ct_findings_found_at_utc"), table_name="ct_findings")
    op.drop_table("ct_findings")
    op.drop_table("ct_authorized_cas")
