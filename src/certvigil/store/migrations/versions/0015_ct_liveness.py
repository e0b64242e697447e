"""CT liveness re-checks with the AS of each address; static logs' issuers kept

``ct_liveness_checks`` holds one row per check (addresses, HTTPS status, page title,
origin AS with prefix, country and name, error), belonging to its ``ct_findings`` row.
``ct_issuers`` keeps every issuer certificate a static log served, by SHA-256, so it is
fetched once for good, across runs.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Applies this revision."""
    op.create_table(
        "ct_liveness_checks",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("finding_id", _ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column(
            "checked_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("https_status", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("asn", sa.BigInteger(), nullable=True),
        sa.Column("asn_prefix", sa.String(length=64), nullable=True),
        sa.Column("asn_country", sa.String(length=16), nullable=True),
        sa.Column("asn_name", sa.Text(), nullable=True),
        sa.Column("asn_source", sa.String(length=8), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["ct_findings.id"],
            name=op.f("fk_ct_liveness_checks_finding_id_ct_findings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ct_liveness_checks")),
    )
    op.create_index(
        op.f("ix_ct_liveness_checks_finding_id"),
        "ct_liveness_checks",
        ["finding_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_ct_liveness_checks_checked_at_utc"),
        "ct_liveness_checks",
        ["checked_at_utc"],
        unique=False,
    )
    op.create_table(
        "ct_issuers",
        sa.Column("sha256_hex", sa.String(length=64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column(
            "first_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("sha256_hex", name=op.f("pk_ct_issuers")),
    )


def downgrade() -> None:
    """Reverts this revision."""
    op.drop_table("ct_issuers")
    op.drop_index(op.f("ix_ct_liveness_checks_checked_at_utc"), table_name="ct_liveness_checks")
    op.drop_index(op.f("ix_ct_liveness_checks_finding_id"), table_name="ct_liveness_checks")
    op.drop_table("ct_liveness_checks")
