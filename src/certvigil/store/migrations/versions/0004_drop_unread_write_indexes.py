"""Drop two indexes no query reads that every ingested report rewrote

``ix_deployments_current_cert`` (is_current, certificate) and
``ix_endpoints_current_certificate_sha256`` served no query: "where is this
certificate deployed" reads deployments by certificate, "what expires soon" reads the
covering expiry index, and certificates are never deleted (the only use a foreign-key
index on the endpoint's current certificate would have). Yet the ingest upserts set
``is_current`` and ``current_certificate_sha256`` on every report, so both were
rewritten for each one: about 40% of the pages a batch of reports wrote.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Applies this revision."""
    op.drop_index("ix_deployments_current_cert", table_name="deployments")
    op.drop_index("ix_endpoints_current_certificate_sha256", table_name="endpoints")


def downgrade() -> None:
    """Reverts this revision."""
    op.create_index(
        "ix_endpoints_current_certificate_sha256",
        "endpoints",
        ["current_certificate_sha256"],
    )
    op.create_index(
        "ix_deployments_current_cert", "deployments", ["is_current", "certificate_sha256"]
    )
