"""The central server: API keys, agents, received report ids and the alert event log

``api_keys`` keeps a SHA-256 of each token (never the token) and a short lookup id;
``agents`` one row per reporting agent with its last contact; ``received_reports`` the
ids of report batches already stored, so that a retried batch is stored once;
``alert_events`` the append-only log the live alert stream replays.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _utc() -> certvigil.store.models.UtcDateTime:
    return certvigil.store.models.UtcDateTime(timezone=True)


def upgrade() -> None:
    """Applies this revision."""
    op.create_table(
        "api_keys",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("lookup", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at_utc", _utc(), nullable=False),
        sa.Column("revoked_at_utc", _utc(), nullable=True),
        sa.Column("last_used_at_utc", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("lookup", name=op.f("uq_api_keys_lookup")),
        sa.UniqueConstraint("name", name=op.f("uq_api_keys_name")),
    )
    op.create_table(
        "agents",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("api_key_id", _Id, nullable=True),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("targets", sa.Integer(), nullable=False),
        sa.Column("backlog", sa.Integer(), nullable=False),
        sa.Column("first_contact_utc", _utc(), nullable=False),
        sa.Column("last_contact_utc", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name=op.f("fk_agents_api_key_id_api_keys"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("name", name=op.f("uq_agents_name")),
    )
    op.create_index(op.f("ix_agents_last_contact_utc"), "agents", ["last_contact_utc"])
    op.create_table(
        "received_reports",
        sa.Column("report_id", sa.String(length=255), nullable=False),
        sa.Column("agent_name", sa.String(length=100), nullable=False),
        sa.Column("received_at_utc", _utc(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_received_reports")),
    )
    op.create_table(
        "alert_events",
        sa.Column("id", _Id, autoincrement=True, nullable=False),
        sa.Column("alert_id", _Id, nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("created_at_utc", _utc(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("delivery_id", _Id, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index(op.f("ix_alert_events_alert_id"), "alert_events", ["alert_id"])
    op.create_index(op.f("ix_alert_events_delivery_id"), "alert_events", ["delivery_id"])


def downgrade() -> None:
    """Reverts this revision."""
    op.drop_index(op.f("ix_alert_events_delivery_id"), table_name="alert_events")
    op.drop_index(op.f("ix_alert_events_alert_id"), table_name="alert_events")
    op.drop_table("alert_events")
    op.drop_table("received_reports")
    op.drop_index(op.f("ix_agents_last_contact_utc"), table_name="agents")
    op.drop_table("agents")
    op.drop_table("api_keys")
