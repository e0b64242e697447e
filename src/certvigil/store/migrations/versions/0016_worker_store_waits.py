"""Distributed workers: how often and how long each waited for the store

A worker that cannot write keeps its shard and retries; ``scan_workers.store_waits``
counts those waits and ``store_waited_s`` adds up their length, for
``certvigil workers status``.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "scan_workers",
        sa.Column("store_waits", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column(
        "scan_workers",
        sa.Column("store_waited_s", sa.Float(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("scan_workers") as batch:
        batch.drop_column("store_waited_s")
        batch.drop_column("store_waits")
