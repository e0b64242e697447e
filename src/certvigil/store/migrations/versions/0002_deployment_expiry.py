"""Deployments carry their certificate's expiry, indexed with is_current and position

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Applies this revision."""
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "not_after_utc",
                certvigil.store.models.UtcDateTime(timezone=True),
                nullable=True,
            )
        )
    op.execute(
        "UPDATE deployments SET not_after_utc = (SELECT certificates.not_after_utc "
        "FROM certificates WHERE certificates.sha256_hex = deployments.certificate_sha256)"
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.alter_column(
            "not_after_utc",
            existing_type=certvigil.store.models.UtcDateTime(timezone=True),
            nullable=False,
        )
        batch_op.create_index(
            "ix_deployments_current_expiry",
            ["is_current", "chain_position", "not_after_utc"],
            unique=False,
        )


def downgrade() -> None:
    """Reverts this revision."""
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_current_expiry")
        batch_op.drop_column("not_after_utc")
