"""JSON forms of store records for the API (plain dicts, times as ISO 8601 UTC)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from certvigil.analysis.model import Finding
from certvigil.server.errors import ApiError
from certvigil.store import AlertRecord, EndpointRecord, InventoryRow, ObservationRecord
from certvigil.store.records import DeploymentRecord
from certvigil.store.server_queries import AgentRecord, AlertEventRecord
from certvigil.targets.target import Target


def iso(value: datetime | None) -> str | None:
    """An aware time as ISO 8601 with ``Z``."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def target_json(target: Target) -> dict[str, Any]:
    """An endpoint's key."""
    return {
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "starttls": target.starttls.value if target.starttls is not None else None,
    }


def finding_json(finding: Finding) -> dict[str, Any]:
    """One finding."""
    return {
        "code": str(finding.code),
        "severity": finding.severity.value,
        "message": finding.message,
    }


def alert_json(alert: AlertRecord) -> dict[str, Any]:
    """An alert."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "severity": alert.severity.value,
        "state": alert.state.value,
        "summary": alert.summary,
        "endpoint_id": alert.endpoint_id,
        "endpoint": target_json(alert.target) if alert.target is not None else None,
        "certificate_sha256": alert.certificate_sha256,
        "observation_id": alert.observation_id,
        "details": alert.details,
        "opened_at": iso(alert.opened_at_utc),
        "acknowledged_at": iso(alert.acknowledged_at_utc),
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": iso(alert.resolved_at_utc),
    }


def event_json(event: AlertEventRecord) -> dict[str, Any]:
    """A stream event."""
    return {
        "id": event.id,
        "event": event.event,
        "alert_id": event.alert_id,
        "at": iso(event.created_at_utc),
        "alert": event.payload,
        "detail": event.detail,
    }


def inventory_json(row: InventoryRow, *, now: datetime) -> dict[str, Any]:
    """A deployed certificate."""
    return {
        "sha256": row.sha256_hex,
        "endpoint_id": row.endpoint_id,
        "endpoint": target_json(row.target),
        "tags": list(row.tags),
        "chain_position": row.chain_position,
        "subject": row.subject,
        "subject_cn": row.subject_cn,
        "issuer": row.issuer,
        "issuer_cn": row.issuer_cn,
        "serial_hex": row.serial_hex,
        "not_before": iso(row.not_before_utc),
        "not_after": iso(row.not_after_utc),
        "days_remaining": (row.not_after_utc - now).days,
        "key_type": row.key_type,
        "key_bits": row.key_bits,
        "san_dns": list(row.san_dns),
        "deployed_since": iso(row.deployed_since_utc),
        "last_seen": iso(row.last_seen_utc),
    }


def endpoint_json(endpoint: EndpointRecord) -> dict[str, Any]:
    """An endpoint."""
    return {
        "id": endpoint.id,
        "endpoint": target_json(endpoint.target),
        "tags": list(endpoint.tags),
        "first_seen": iso(endpoint.first_seen_utc),
        "last_seen": iso(endpoint.last_seen_utc),
        "last_ok": iso(endpoint.last_ok_utc),
        "last_status": endpoint.last_status.value,
        "consecutive_failures": endpoint.consecutive_failures,
        "current_certificate_sha256": endpoint.current_certificate_sha256,
    }


def observation_json(record: ObservationRecord) -> dict[str, Any]:
    """An observation of an endpoint."""
    return {
        "id": record.id,
        "observed_at": iso(record.observed_at_utc),
        "status": record.status.value,
        "failure_kind": record.failure_kind.value if record.failure_kind else None,
        "failure_detail": record.failure_detail,
        "protocol": record.protocol,
        "cipher": record.cipher,
        "peer_address": record.peer_address,
        "leaf_sha256": record.leaf_sha256,
        "leaf_not_after": iso(record.leaf_not_after_utc),
        "chain_sha256": list(record.chain_sha256),
        "is_trusted": record.is_trusted,
        "chain_error": record.chain_error,
        "hostname_matches": record.hostname_matches,
        "verdict": record.verdict.value,
        "findings": [finding_json(f) for f in record.findings],
    }


def deployment_json(record: DeploymentRecord) -> dict[str, Any]:
    """Where a certificate is or was served."""
    return {
        "endpoint_id": record.endpoint_id,
        "endpoint": target_json(record.target),
        "chain_position": record.chain_position,
        "first_seen": iso(record.first_seen_utc),
        "last_seen": iso(record.last_seen_utc),
        "is_current": record.is_current,
    }


def agent_json(agent: AgentRecord, *, now: datetime, silence_intervals: int) -> dict[str, Any]:
    """An agent."""
    silent_s = (now - agent.last_contact_utc).total_seconds()
    return {
        "name": agent.name,
        "version": agent.version,
        "tags": list(agent.tags),
        "interval_s": agent.interval_s,
        "targets": agent.targets,
        "backlog": agent.backlog,
        "first_contact": iso(agent.first_contact_utc),
        "last_contact": iso(agent.last_contact_utc),
        "is_silent": silent_s > agent.interval_s * silence_intervals,
    }


# Cursors ----------------------------------------------------------------------------

MAX_CURSOR_CHARS = 400


def encode_cursor(value: Any) -> str:
    """An opaque cursor for the next page."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """The value inside a cursor, ``None`` for no cursor.

    Raises:
        ApiError: 400 for a cursor this server did not make.
    """
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise ApiError(400, "bad_cursor", "cursor: too long; pass the next_cursor given")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(400, "bad_cursor", "cursor: not one this server made") from None


def page(items: list[dict[str, Any]], next_cursor: str | None) -> dict[str, Any]:
    """A page of a list."""
    return {"items": items, "next_cursor": next_cursor}
