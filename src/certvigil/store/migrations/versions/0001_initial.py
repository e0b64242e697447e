"""Initial schema: endpoints, certificates, deployments, observations, alerts, deliveries

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import certvigil.store.models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Applies this revision."""
    op.create_table(
        "certificates",
        sa.Column("sha256_hex", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("subject_cn", sa.Text(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("issuer_cn", sa.Text(), nullable=True),
        sa.Column("serial_hex", sa.String(length=128), nullable=False),
        sa.Column(
            "not_before_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "not_after_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("key_type", sa.String(length=16), nullable=False),
        sa.Column("key_bits", sa.Integer(), nullable=False),
        sa.Column("signature_algorithm", sa.String(length=100), nullable=False),
        sa.Column("is_ca", sa.Boolean(), nullable=False),
        sa.Column("is_self_signed", sa.Boolean(), nullable=False),
        sa.Column("san_dns", sa.JSON(), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=True),
        sa.Column(
            "first_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("sha256_hex", name=op.f("pk_certificates")),
    )
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_certificates_not_after_utc"), ["not_after_utc"], unique=False
        )

    op.create_table(
        "endpoints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("sni", sa.String(length=255), server_default="", nullable=False),
        sa.Column("starttls", sa.String(length=16), server_default="", nullable=False),
        sa.Column(
            "first_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_ok_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=16), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("current_certificate_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "last_observation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["current_certificate_sha256"],
            ["certificates.sha256_hex"],
            name=op.f("fk_endpoints_current_certificate_sha256_certificates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_endpoints")),
        sa.UniqueConstraint("host", "port", "sni", "starttls", name="uq_endpoints_key"),
    )
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_endpoints_current_certificate_sha256"),
            ["current_certificate_sha256"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_endpoints_host"), ["host"], unique=False)

    op.create_table(
        "deployments",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "endpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("certificate_sha256", sa.String(length=64), nullable=False),
        sa.Column("chain_position", sa.Integer(), nullable=False),
        sa.Column(
            "first_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "last_seen_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["certificate_sha256"],
            ["certificates.sha256_hex"],
            name=op.f("fk_deployments_certificate_sha256_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_deployments_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("endpoint_id", "certificate_sha256", name="uq_deployments_pair"),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_deployments_certificate_sha256"), ["certificate_sha256"], unique=False
        )
        batch_op.create_index(
            "ix_deployments_current_cert", ["is_current", "certificate_sha256"], unique=False
        )

    op.create_table(
        "endpoint_tags",
        sa.Column(
            "endpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_endpoint_tags_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "tag", name=op.f("pk_endpoint_tags")),
    )
    with op.batch_alter_table("endpoint_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_endpoint_tags_tag"), ["tag"], unique=False)

    op.create_table(
        "observations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "endpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "observed_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "evaluated_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_kind", sa.String(length=32), nullable=True),
        sa.Column("failure_detail", sa.Text(), nullable=True),
        sa.Column("tls_alert", sa.String(length=64), nullable=True),
        sa.Column("peer_address", sa.String(length=64), nullable=True),
        sa.Column("protocol", sa.String(length=16), nullable=True),
        sa.Column("cipher", sa.String(length=100), nullable=True),
        sa.Column("alpn", sa.String(length=32), nullable=True),
        sa.Column("leaf_sha256", sa.String(length=64), nullable=True),
        sa.Column("chain_sha256", sa.JSON(), nullable=False),
        sa.Column("is_trusted", sa.Boolean(), nullable=True),
        sa.Column("chain_error", sa.Text(), nullable=True),
        sa.Column("hostname_matches", sa.Boolean(), nullable=True),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("connect_s", sa.Float(), nullable=True),
        sa.Column("handshake_s", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_observations_endpoint_id_endpoints"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_observations")),
    )
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_observations_endpoint_time", ["endpoint_id", "observed_at_utc"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_observations_observed_at_utc"), ["observed_at_utc"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "endpoint_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("certificate_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "observation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column(
            "opened_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "acknowledged_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("acknowledged_by", sa.String(length=255), nullable=True),
        sa.Column(
            "resolved_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["certificate_sha256"],
            ["certificates.sha256_hex"],
            name=op.f("fk_alerts_certificate_sha256_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["endpoints.id"],
            name=op.f("fk_alerts_endpoint_id_endpoints"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["observation_id"],
            ["observations.id"],
            name=op.f("fk_alerts_observation_id_observations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_dedup_key"), ["dedup_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_endpoint_id"), ["endpoint_id"], unique=False)
        batch_op.create_index("ix_alerts_state_opened", ["state", "opened_at_utc"], unique=False)
        batch_op.create_index(
            "uq_alerts_active_dedup_key",
            ["dedup_key"],
            unique=True,
            sqlite_where=sa.text("state != 'resolved'"),
            postgresql_where=sa.text("state != 'resolved'"),
        )

    op.create_table(
        "deliveries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("alert_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "next_attempt_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "lease_until_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at_utc", certvigil.store.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name=op.f("fk_deliveries_alert_id_alerts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("alert_id", "event", "route", name="uq_deliveries_alert_event_route"),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_due", ["status", "next_attempt_at_utc"], unique=False)


def downgrade() -> None:
    """Reverts this revision."""
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_due")

    op.drop_table("deliveries")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_active_dedup_key",
            sqlite_where=sa.text("state != 'resolved'"),
            postgresql_where=sa.text("state != 'resolved'"),
        )
        batch_op.drop_index("ix_alerts_state_opened")
        batch_op.drop_index(batch_op.f("ix_alerts_endpoint_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_dedup_key"))

    op.drop_table("alerts")
    with op.batch_alter_table("observations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_observations_observed_at_utc"))
        batch_op.drop_index("ix_observations_endpoint_time")

    op.drop_table("observations")
    with op.batch_alter_table("endpoint_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoint_tags_tag"))

    op.drop_table("endpoint_tags")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index("ix_deployments_current_cert")
        batch_op.drop_index(batch_op.f("ix_deployments_certificate_sha256"))

    op.drop_table("deployments")
    with op.batch_alter_table("endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_endpoints_host"))
        batch_op.drop_index(batch_op.f("ix_endpoints_current_certificate_sha256"))

    op.drop_table("endpoints")
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_not_after_utc"))

    op.drop_table("certificates")
