"""Owned delivery claims, idempotency keys, and the daemon lock

A claimed delivery names the worker that holds it (``claimed_by``: host, process id and
start nonce), so a starting daemon releases only its own or a dead process's claims,
never those of a daemon still sending. Each delivery gets an idempotency key, sent with
every attempt. ``daemon_locks`` holds one row per running daemon's database, with a
lease its holder renews, so a second daemon on the same database is refused.

Rows queued before this revision keep a NULL key (the key is then derived from the
delivery id) and no owner (their claims lapse with their lease, as before).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Applies this revision."""
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=64), nullable=True))
    op.create_table(
        "daemon_locks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column(
            "acquired_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "heartbeat_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "lease_until_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_daemon_locks")),
    )


def downgrade() -> None:
    """Reverts this revision."""
    op.drop_table("daemon_locks")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("claimed_by")
