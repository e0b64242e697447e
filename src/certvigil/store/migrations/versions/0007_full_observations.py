"""Full observations: checks run, grade, protocols, revocation status, the observation
itself, and revocation documents stored once

Observations gain what the daemon's optional checks found (the checks that ran, the
grade, the accepted protocols, the leaf's revocation status) as plain columns for the
dashboard and the inventory filters, and the whole observation as zlib-compressed JSON
(``observation_z``) so that it can be re-judged later (docs/store.md says why a blob and
not normalised tables). Endpoints keep the latest of each, as they keep the current
certificate. CRLs and OCSP responses go into ``revocation_documents`` once, keyed by
their SHA-256, and observations refer to them through ``observation_documents``.

Existing rows keep NULL in every new column: they were recorded before any of it was
kept, and read as "not checked".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = certvigil.store.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    """Applies this revision."""
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checks", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("grade", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("protocols", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("revocation_status", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("observation_z", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grade", sa.String(length=4), nullable=True))
        batch_op.add_column(sa.Column("protocols", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("revocation_status", sa.String(length=24), nullable=True))
    op.create_table(
        "revocation_documents",
        sa.Column("sha256_hex", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("fetched_at_utc", _UTC, nullable=False),
        sa.Column("next_update_utc", _UTC, nullable=True),
        sa.Column("der_z", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("sha256_hex", name=op.f("pk_revocation_documents")),
    )
    op.create_table(
        "observation_documents",
        sa.Column("observation_id", _ID, nullable=False),
        sa.Column("document_sha256", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["observations.id"],
            name=op.f("fk_observation_documents_observation_id_observations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_sha256"],
            ["revocation_documents.sha256_hex"],
            name=op.f("fk_observation_documents_document_sha256_revocation_documents"),
        ),
        sa.PrimaryKeyConstraint(
            "observation_id", "document_sha256", name=op.f("pk_observation_documents")
        ),
    )
    with op.batch_alter_table("observation_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_observation_documents_document_sha256"),
            ["document_sha256"],
            unique=False,
        )


def downgrade() -> None:
    """Reverts this revision."""
    op.drop_table("observation_documents")
    op.drop_table("revocation_documents")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_column("revocation_status")
        batch_op.drop_column("protocols")
        batch_op.drop_column("grade")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_column("observation_z")
        batch_op.drop_column("revocation_status")
        batch_op.drop_column("protocols")
        batch_op.drop_column("grade")
        batch_op.drop_column("checks")
