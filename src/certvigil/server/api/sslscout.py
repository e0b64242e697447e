"""SSL Scout's API paths, answered from certvigil's inventory with SSL Scout's field names.

``/api/sslscout/report`` takes the same batches as ``/api/v1/reports``: a certvigil
agent running an SSL Scout configuration posts to its ``api_endpoint`` unchanged.
The lists use the names of SSL Scout's certificate data (``subject_cn``,
``subject_alt_names``, ``issuer``, ``not_before``, ``not_after``,
``days_until_expiry``, ``fingerprint_sha256``, ``fingerprint_sha1``, ``key_type``,
``key_size``, ``self_signed``) and page with ``cursor`` like the rest of the API.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from certvigil.server.api.json_body import FastJsonRoute
from certvigil.server.api.v1 import (
    Admin,
    Cursor,
    Reader,
    ReportBatch,
    Reporter,
    State,
    _scopes,
    alert_page,
    change_alert,
    host_glob,
    ingest,
    outcome_json,
)
from certvigil.server.auth import ADMINS, AGENTS_ONLY, READERS
from certvigil.server.errors import ApiError
from certvigil.server.shapes import decode_cursor, encode_cursor, iso
from certvigil.store import AlertRecord, AlertState, outbox
from certvigil.store import queries as q
from certvigil.store import server_queries as sq

router = APIRouter(tags=["sslscout"], route_class=FastJsonRoute)


@router.post(
    "/report",
    summary="SSL Scout: report certificates (same body as /api/v1/reports)",
    openapi_extra=_scopes(*AGENTS_ONLY),
)
async def report(batch: ReportBatch, principal: Reporter, state: State) -> dict[str, Any]:
    """Stores a batch; answers with ``success`` as SSL Scout clients expect."""
    outcome = await ingest(state, principal, batch)
    return {"success": True, **outcome_json(outcome)}


@router.get(
    "/certificates",
    summary="SSL Scout: certificates, optionally expiring within N days on matching hosts",
    openapi_extra=_scopes(*READERS),
)
def certificates(
    _principal: Reader,
    state: State,
    expiring_within: Annotated[float | None, Query(ge=0, le=36500)] = None,
    host: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """SSL Scout's certificate list."""
    now = state.clock()
    try:
        with state.store.read() as connection:
            rows, next_key = sq.certificate_page(
                connection,
                now=now,
                expiring_within_days=expiring_within,
                host_glob=host_glob(host),
                after=decode_cursor(cursor),
                limit=limit,
            )
            facts = q.get_certificates(connection, (r.sha256_hex for r in rows))
    except ValueError as exc:
        raise ApiError(400, "bad_cursor", str(exc)) from None
    items = []
    for row in rows:
        fact = facts.get(row.sha256_hex)
        items.append(
            {
                "host": row.target.host,
                "port": row.target.port,
                "subject_cn": row.subject_cn,
                "subject_alt_names": list(row.san_dns) + (list(fact.san_ip) if fact else []),
                "issuer": row.issuer,
                "issuer_cn": row.issuer_cn,
                "not_before": iso(row.not_before_utc),
                "not_after": iso(row.not_after_utc),
                "days_until_expiry": (row.not_after_utc - now).days,
                "fingerprint_sha256": row.sha256_hex,
                "fingerprint_sha1": fact.sha1_hex if fact else None,
                "key_type": row.key_type,
                "key_size": row.key_bits,
                "self_signed": fact.is_self_signed if fact else None,
                "last_seen": iso(row.last_seen_utc),
            }
        )
    return {
        "success": True,
        "count": len(items),
        "certificates": items,
        "next_cursor": encode_cursor(next_key) if next_key is not None else None,
    }


def _alert(alert: AlertRecord) -> dict[str, Any]:
    details = alert.details
    return {
        "id": alert.id,
        "host": alert.target.host if alert.target else None,
        "port": alert.target.port if alert.target else None,
        "type": alert.kind,
        "severity": alert.severity.value,
        "message": alert.summary,
        "fingerprint_sha256": alert.certificate_sha256,
        "threshold": details.get("threshold"),
        "created_at": iso(alert.opened_at_utc),
        "unread": alert.state is AlertState.OPEN,
        "acknowledged": alert.state is AlertState.ACKNOWLEDGED,
        "acknowledged_at": iso(alert.acknowledged_at_utc),
        "acknowledged_by": alert.acknowledged_by,
        "resolved": alert.state is AlertState.RESOLVED,
    }


@router.get(
    "/alerts",
    summary="SSL Scout: alerts (unread=true: not acknowledged)",
    openapi_extra=_scopes(*READERS),
)
def alerts(
    _principal: Reader,
    state: State,
    unread: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """SSL Scout's alert list."""
    chunk, next_id = alert_page(
        state, unread=unread, alert_state=None, severity=None, limit=limit, cursor=cursor
    )
    return {
        "success": True,
        "count": len(chunk),
        "alerts": [_alert(a) for a in chunk],
        "next_cursor": encode_cursor(next_id) if next_id else None,
    }


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="SSL Scout: acknowledge an alert",
    openapi_extra=_scopes(*ADMINS),
)
def acknowledge(
    alert_id: Annotated[int, Path(ge=1, le=2**62)], principal: Admin, state: State
) -> dict[str, Any]:
    """Acknowledges; ``success`` and the alert in SSL Scout's names."""
    change_alert(state, alert_id, principal, resolve=False, note=None)
    with state.store.read() as connection:
        alert = outbox.get_alert(connection, alert_id)
    return {"success": True, "alert": _alert(alert) if alert else None}
