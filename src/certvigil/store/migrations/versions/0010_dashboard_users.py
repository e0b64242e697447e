"""Dashboard users, sessions and failed-login counters

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_UTC = certvigil.store.models.UtcDateTime()


def upgrade() -> None:
    """Applies this revision."""
    op.create_table(
        "dashboard_users",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at_utc", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboard_users")),
        sa.UniqueConstraint("name", name=op.f("uq_dashboard_users_name")),
    )
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at_utc", _UTC, nullable=False),
        sa.Column("expires_at_utc", _UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["dashboard_users.id"],
            name=op.f("fk_dashboard_sessions_user_id_dashboard_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_dashboard_sessions")),
    )
    op.create_index(
        op.f("ix_dashboard_sessions_user_id"), "dashboard_sessions", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_dashboard_sessions_expires_at_utc"),
        "dashboard_sessions",
        ["expires_at_utc"],
        unique=False,
    )
    op.create_table(
        "dashboard_login_throttle",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start_utc", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_dashboard_login_throttle")),
    )
    if op.get_context().dialect.name == "sqlite":
        # The overview's issuer counts read issuers from this index (see
        # store/dashboard_models.py); PostgreSQL's entry size limit rules it out there.
        op.create_index(
            "ix_certificates_issuer_cover",
            "certificates",
            ["sha256_hex", "issuer_cn", "issuer"],
            unique=False,
        )


def downgrade() -> None:
    """Reverts this revision."""
    if op.get_context().dialect.name == "sqlite":
        op.drop_index("ix_certificates_issuer_cover", table_name="certificates")
    op.drop_table("dashboard_login_throttle")
    op.drop_index(op.f("ix_dashboard_sessions_expires_at_utc"), table_name="dashboard_sessions")
    op.drop_index(op.f("ix_dashboard_sessions_user_id"), table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
    op.drop_table("dashboard_users")
