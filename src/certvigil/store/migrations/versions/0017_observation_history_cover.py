"""Observations by (endpoint, time) also hold what the alert rules read of each one

The alert rules read, for every reported endpoint, its newest observations' status,
revocation status, grade and leaf. With the index holding only ``(endpoint_id,
observed_at_utc)``, each observation visited was looked up again in the table, whose
rows carry the whole stored observation: a random read into the largest table per row
visited. The index now carries those columns (and the id, so that newest-first by
time then id is its own order) and the reads never leave it. A random insert writes
about one leaf page either way.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COVERING = [
    "endpoint_id",
    "observed_at_utc",
    "id",
    "status",
    "revocation_status",
    "grade",
    "leaf_sha256",
]


def upgrade() -> None:
    """Applies this revision."""
    op.create_index("ix_observations_endpoint_time_cover", "observations", _COVERING)
    op.drop_index("ix_observations_endpoint_time", table_name="observations")


def downgrade() -> None:
    """Reverts this revision."""
    op.create_index(
        "ix_observations_endpoint_time", "observations", ["endpoint_id", "observed_at_utc"]
    )
    op.drop_index("ix_observations_endpoint_time_cover", table_name="observations")
