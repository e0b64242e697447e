"""Distributed scans: shards, their recorded items, and the workers

``scan_shards`` holds each task the scheduler sends (state, attempts, the worker that
ran it last, and the item it was scanning when its worker died, to isolate a target
that keeps killing workers); ``scan_shard_items`` one row per endpoint a shard recorded,
written in the observation's own transaction, so a shard delivered again skips it;
``scan_workers`` each worker's heartbeat and throughput.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = certvigil.store.models.UtcDateTime


def upgrade() -> None:
    """Applies this revision."""
    op.create_table(
        "scan_shards",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("round_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("targets", sa.Integer(), nullable=False),
        sa.Column("recorded", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("alert_events", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("created_at_utc", _UTC(timezone=True), nullable=False),
        sa.Column("started_at_utc", _UTC(timezone=True), nullable=True),
        sa.Column("finished_at_utc", _UTC(timezone=True), nullable=True),
        sa.Column("current_index", sa.Integer(), nullable=True),
        sa.Column("suspect_index", sa.Integer(), nullable=True),
        sa.Column("suspect_crashes", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scan_shards")),
    )
    op.create_index(op.f("ix_scan_shards_round_id"), "scan_shards", ["round_id"], unique=False)
    op.create_table(
        "scan_shard_items",
        sa.Column("shard_id", sa.String(length=64), nullable=False),
        sa.Column("item_index", sa.Integer(), nullable=False),
        sa.Column(
            "observation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("poisoned", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shard_id"],
            ["scan_shards.id"],
            name=op.f("fk_scan_shard_items_shard_id_scan_shards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("shard_id", "item_index", name=op.f("pk_scan_shard_items")),
    )
    op.create_table(
        "scan_workers",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.Column("started_at_utc", _UTC(timezone=True), nullable=False),
        sa.Column("heartbeat_at_utc", _UTC(timezone=True), nullable=False),
        sa.Column("current_shard", sa.String(length=64), nullable=True),
        sa.Column("shards_done", sa.Integer(), nullable=False),
        sa.Column("endpoints_done", sa.Integer(), nullable=False),
        sa.Column("endpoints_per_s", sa.Float(), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scan_workers")),
    )


def downgrade() -> None:
    """Reverts this revision."""
    op.drop_table("scan_workers")
    op.drop_table("scan_shard_items")
    op.drop_index(op.f("ix_scan_shards_round_id"), table_name="scan_shards")
    op.drop_table("scan_shards")
