"""The current-expiry index on deployments also covers the columns the inventory reads

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COVERING = [
    "is_current",
    "chain_position",
    "not_after_utc",
    "endpoint_id",
    "certificate_sha256",
    "first_seen_utc",
    "last_seen_utc",
]


def upgrade() -> None:
    """Applies this revision."""
    op.create_index("ix_deployments_current_expiry_cover", "deployments", _COVERING)
    op.drop_index("ix_deployments_current_expiry", table_name="deployments")


def downgrade() -> None:
    """Reverts this revision."""
    op.create_index(
        "ix_deployments_current_expiry",
        "deployments",
        ["is_current", "chain_position", "not_after_utc"],
    )
    op.drop_index("ix_deployments_current_expiry_cover", table_name="deployments")
