"""Dashboard users get a role: admin (acknowledge, resolve) or viewer (read only)

Revision ID: 0014
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Applies this revision: users from before it stay admins, as they could do all."""
    op.add_column(
        "dashboard_users",
        sa.Column("role", sa.String(length=10), server_default="admin", nullable=False),
    )


def downgrade() -> None:
    """Reverts this revision."""
    with op.batch_alter_table("dashboard_users") as batch:
        batch.drop_column("role")
