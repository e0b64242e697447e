"""Renderers for stored data: inventory, endpoint history, changes and deployments."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO, TypeVar

from rich.console import Console
from rich.text import Text

from certvigil.analysis.changes import Change, ChangeKind
from certvigil.analysis.model import CertificateFacts, Severity
from certvigil.output.columns import (
    Column,
    Fit,
    Step,
    TableStyle,
    drop,
    fit_table,
    results_console,
    shorten,
)
from certvigil.output.safe_text import cell, safe_csv_row, visible
from certvigil.output.summary import days_remaining
from certvigil.store.records import (
    AlertRecord,
    DeploymentRecord,
    EndpointRecord,
    InventoryRow,
    ObservationRecord,
)
from certvigil.targets.target import Target

INVENTORY_COLUMNS: tuple[str, ...] = (
    "endpoint",
    "host",
    "port",
    "sni",
    "starttls",
    "tags",
    "chain_position",
    "subject",
    "subject_cn",
    "issuer",
    "issuer_cn",
    "serial_hex",
    "not_before_utc",
    "not_after_utc",
    "days_remaining",
    "key_type",
    "key_bits",
    "san_dns",
    "sha256",
    "deployed_since_utc",
    "last_seen_utc",
    "grade",
    "revocation_status",
    "protocols",
)
"""The ``inventory --csv`` header, in order; lists are joined with ``;``. A text cell
that would start a spreadsheet formula gets a leading ``'``."""

_NUMBER_COLUMNS = frozenset({"port", "chain_position", "days_remaining", "key_bits"})

_SEVERITY_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}


def _console(stream: TextIO, *, color: bool | None) -> Console:
    return results_console(stream, color=color)


INVENTORY_TABLE_STEPS: tuple[Step, ...] = (
    drop("revocation"),
    drop("issuer"),
    drop("grade"),
    drop("key"),
    shorten("expires (UTC)"),
    drop("tags"),
    drop("pos"),
    drop("expires (UTC)"),
    drop("subject"),
    drop("sha256"),
)
"""What the inventory table gives up, first to last, on a narrow screen."""

HISTORY_TABLE_STEPS: tuple[Step, ...] = (
    drop("issuer"),
    drop("protocols"),
    drop("grade"),
    drop("protocol"),
    shorten("observed (UTC)"),
    drop("expires"),
    drop("leaf"),
)
"""What each history table gives up, first to last, on a narrow screen."""

CHANGES_TABLE_STEPS: tuple[Step, ...] = (shorten("observed (UTC)"), drop("change"))
"""What the changes table gives up, first to last, on a narrow screen."""

DEPLOYMENTS_TABLE_STEPS: tuple[Step, ...] = (
    shorten("first seen (UTC)"),
    shorten("last seen (UTC)"),
    drop("position"),
    drop("first seen (UTC)"),
)
"""What each ``where`` table gives up, first to last, on a narrow screen."""

_STORE_TABLE = TableStyle(box=True, show_edge=False, pad_edge=False, header_style="bold")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def inventory_row_json(row: InventoryRow, *, now: datetime) -> dict[str, Any]:
    """One inventory row as a JSON object (times ISO 8601 UTC)."""
    target = row.target
    return {
        "endpoint": target.endpoint,
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "starttls": target.starttls.value if target.starttls is not None else None,
        "tags": list(row.tags),
        "chain_position": row.chain_position,
        "subject": row.subject,
        "subject_cn": row.subject_cn,
        "issuer": row.issuer,
        "issuer_cn": row.issuer_cn,
        "serial_hex": row.serial_hex,
        "not_before_utc": _iso(row.not_before_utc),
        "not_after_utc": _iso(row.not_after_utc),
        "days_remaining": days_remaining(row.not_after_utc, now=now),
        "key_type": row.key_type,
        "key_bits": row.key_bits,
        "san_dns": list(row.san_dns),
        "sha256": row.sha256_hex,
        "deployed_since_utc": _iso(row.deployed_since_utc),
        "last_seen_utc": _iso(row.last_seen_utc),
        "grade": row.grade,
        "revocation_status": row.revocation_status,
        "protocols": list(row.protocols) if row.protocols is not None else None,
    }


def render_inventory_json(
    rows: Sequence[InventoryRow], stream: TextIO, *, now: datetime, query: dict[str, Any]
) -> None:
    """Writes one JSON document: the query, when it ran, and the certificates.

    Args:
        rows: The inventory rows.
        stream: Where to write.
        now: The reference time for ``days_remaining``.
        query: The filters used, echoed back.
    """
    document = {
        "generated_at_utc": now.isoformat(),
        "query": query,
        "count": len(rows),
        "certificates": [inventory_row_json(r, now=now) for r in rows],
    }
    _write_document(document, stream)


def render_inventory_csv(rows: Sequence[InventoryRow], stream: TextIO, *, now: datetime) -> None:
    """Writes a header and one CSV row per inventory row."""
    writer = csv.DictWriter(stream, fieldnames=INVENTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        cells: dict[str, str] = {}
        for key, value in inventory_row_json(row, now=now).items():
            if isinstance(value, list):
                cells[key] = ";".join(str(v) for v in value)
            else:
                cells[key] = "" if value is None else str(value)
        writer.writerow(safe_csv_row(cells, numbers=_NUMBER_COLUMNS))


def _grade_cell(grade: str | None) -> Text:
    if grade is None:
        return Text("-")
    style = "green" if grade.startswith("A") else "yellow" if grade in ("B", "C") else "bold red"
    return Text(grade, style=style)


def _revocation_cell(status: str | None) -> Text:
    if status is None:
        return Text("-")
    style = {"good": "green", "revoked": "bold red"}.get(status, "yellow")
    return Text(status, style=style)


def _days_cell(not_after_utc: datetime, *, now: datetime, warn_days: int) -> Text:
    if not_after_utc <= now:
        ago = days_remaining(now, now=not_after_utc)
        return Text(f"expired {ago}d ago" if ago else "expired today", style="bold red")
    days = days_remaining(not_after_utc, now=now)
    style = "yellow" if days <= warn_days else "green"
    return Text(str(days), style=style)


def render_inventory_table(
    rows: Sequence[InventoryRow],
    stream: TextIO,
    *,
    now: datetime,
    warn_days: int = 30,
    color: bool | None = None,
) -> None:
    """Prints the inventory as a table, soonest expiry first.

    Args:
        rows: The inventory rows.
        stream: Where to print.
        now: The reference time for days remaining.
        warn_days: Days remaining at or below which the count shows as a warning.
        color: Force colour on or off; ``None`` asks the stream.
    """
    console = _console(stream, color=color)
    if not rows:
        console.print("no certificates match")
        return
    show_position = any(r.chain_position != 0 for r in rows)
    expires = Column(header="expires (UTC)", short_header="expires", short_cells=[])
    days = Column(header="days", justify="right")
    endpoint = Column(header="endpoint", fit=Fit.WRAP, min_width=8)
    position = Column(header="pos", justify="right")
    subject = Column(header="subject", fit=Fit.CLIP, min_width=12)
    issuer = Column(header="issuer", fit=Fit.CLIP, min_width=12)
    key = Column(header="key")
    sha256 = Column(header="sha256")
    tags = Column(header="tags", fit=Fit.CLIP, min_width=8)
    grade = Column(header="grade")
    revocation = Column(header="revocation")
    short_expires: list[Text] = []
    for row in rows:
        expires.cells.append(Text(row.not_after_utc.strftime("%Y-%m-%d %H:%M")))
        short_expires.append(Text(row.not_after_utc.strftime("%Y-%m-%d")))
        days.cells.append(_days_cell(row.not_after_utc, now=now, warn_days=warn_days))
        endpoint.cells.append(cell(str(row.target)))
        position.cells.append(Text(str(row.chain_position)))
        subject.cells.append(cell(row.subject_cn or row.subject))
        issuer.cells.append(cell(row.issuer_cn or row.issuer))
        key.cells.append(cell(f"{row.key_type.upper()} {row.key_bits}"))
        sha256.cells.append(Text(row.sha256_hex[:16]))
        tags.cells.append(cell(",".join(row.tags)))
        grade.cells.append(_grade_cell(row.grade))
        revocation.cells.append(_revocation_cell(row.revocation_status))
    expires.short_cells = short_expires
    columns = [expires, days, endpoint, *((position,) if show_position else ())]
    # The grade and revocation columns appear once any endpoint was graded or checked.
    checked = [
        *((grade,) if any(r.grade for r in rows) else ()),
        *((revocation,) if any(r.revocation_status for r in rows) else ()),
    ]
    columns += [*checked, subject, issuer, key, sha256, tags]
    console.print(
        fit_table(columns, width=console.width, steps=INVENTORY_TABLE_STEPS, style=_STORE_TABLE)
    )


def observation_json(record: ObservationRecord) -> dict[str, Any]:
    """One stored observation as a JSON object."""
    return {
        "id": record.id,
        "observed_at_utc": _iso(record.observed_at_utc),
        "evaluated_at_utc": _iso(record.evaluated_at_utc),
        "status": record.status.value,
        "failure_kind": record.failure_kind.value if record.failure_kind else None,
        "failure_detail": record.failure_detail,
        "tls_alert": record.tls_alert,
        "peer_address": record.peer_address,
        "protocol": record.protocol,
        "cipher": record.cipher,
        "alpn": record.alpn,
        "leaf_sha256": record.leaf_sha256,
        "leaf_issuer": record.leaf_issuer,
        "leaf_not_after_utc": _iso(record.leaf_not_after_utc),
        "chain_sha256": list(record.chain_sha256),
        "is_trusted": record.is_trusted,
        "chain_error": record.chain_error,
        "hostname_matches": record.hostname_matches,
        "verdict": record.verdict.value,
        "findings": [
            {
                "code": f.code,
                "severity": f.severity.value,
                "message": f.message,
                "cert_index": f.cert_index,
            }
            for f in record.findings
        ],
        "checks": record.checks.split(",") if record.checks else None,
        "grade": record.grade,
        "protocols": list(record.protocols) if record.protocols is not None else None,
        "revocation_status": record.revocation_status,
        "connect_s": record.connect_s,
        "handshake_s": record.handshake_s,
    }


def _endpoint_key_json(target: Target) -> dict[str, Any]:
    """The fields that name an endpoint in the store's documents."""
    return {
        "endpoint": target.endpoint,
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "starttls": target.starttls.value if target.starttls is not None else None,
    }


def endpoint_json(endpoint: EndpointRecord) -> dict[str, Any]:
    """An endpoint's stored summary as a JSON object."""
    return {
        **_endpoint_key_json(endpoint.target),
        "tags": list(endpoint.tags),
        "first_seen_utc": _iso(endpoint.first_seen_utc),
        "last_seen_utc": _iso(endpoint.last_seen_utc),
        "last_ok_utc": _iso(endpoint.last_ok_utc),
        "last_status": endpoint.last_status.value,
        "consecutive_failures": endpoint.consecutive_failures,
        "current_certificate_sha256": endpoint.current_certificate_sha256,
    }


_Item = TypeVar("_Item")


def _write_document(document: dict[str, Any], stream: TextIO) -> None:
    json.dump(document, stream, indent=2)
    stream.write("\n")


def _endpoints_with(
    pairs: Sequence[tuple[EndpointRecord, Sequence[_Item]]],
    key: str,
    item_json: Callable[[_Item], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Each endpoint as a JSON object, with its items under ``key``."""
    return [
        {**endpoint_json(endpoint), key: [item_json(item) for item in items]}
        for endpoint, items in pairs
    ]


def render_history_json(
    histories: Sequence[tuple[EndpointRecord, Sequence[ObservationRecord]]], stream: TextIO
) -> None:
    """Writes one JSON document with each endpoint and its observations, newest first."""
    _write_document(
        {"endpoints": _endpoints_with(histories, "observations", observation_json)}, stream
    )


def render_history_table(
    histories: Sequence[tuple[EndpointRecord, Sequence[ObservationRecord]]],
    stream: TextIO,
    *,
    color: bool | None = None,
) -> None:
    """Prints each endpoint's observations, newest first, one table per endpoint."""
    console = _console(stream, color=color)
    for endpoint, records in histories:
        title = cell(str(endpoint.target), style="bold")
        title.append(
            f"  first seen {endpoint.first_seen_utc:%Y-%m-%d %H:%M}, "
            f"{len(records)} observation{'s' if len(records) != 1 else ''} shown"
        )
        console.print(title)
        observed = Column(header="observed (UTC)", short_header="observed", short_cells=[])
        status_column = Column(header="status")
        protocol = Column(header="protocol")
        leaf = Column(header="leaf")
        issuer = Column(header="issuer", fit=Fit.CLIP, min_width=12)
        expires = Column(header="expires")
        problems = Column(header="verdict / problem", fit=Fit.WRAP, min_width=20)
        grade = Column(header="grade")
        accepted = Column(header="protocols", fit=Fit.WRAP, min_width=8)
        short_observed: list[Text] = []
        for record in records:
            if record.failure_kind is not None:
                status = Text(record.failure_kind.value, style="magenta")
                problem = cell(record.failure_detail)
            else:
                status = Text("ok", style="green")
                worst = [f for f in record.findings if f.severity is record.verdict]
                problem = Text(record.verdict.value, style=_SEVERITY_STYLE[record.verdict])
                if worst and record.verdict.rank >= Severity.WARNING.rank:
                    problem.append(f": {visible(worst[0].code)}")
            observed.cells.append(Text(f"{record.observed_at_utc:%Y-%m-%d %H:%M:%S}"))
            short_observed.append(Text(f"{record.observed_at_utc:%m-%d %H:%M}"))
            status_column.cells.append(status)
            protocol.cells.append(cell(record.protocol))
            leaf.cells.append(Text((record.leaf_sha256 or "")[:16]))
            issuer.cells.append(cell(_issuer_cn(record.leaf_issuer)))
            expires.cells.append(
                Text(f"{record.leaf_not_after_utc:%Y-%m-%d}" if record.leaf_not_after_utc else "")
            )
            problems.cells.append(problem)
            grade.cells.append(_grade_cell(record.grade))
            accepted.cells.append(
                cell(" ".join(record.protocols) if record.protocols is not None else "-")
            )
        observed.short_cells = short_observed
        # Grade and accepted protocols once any shown observation probed them.
        probed = any(r.grade is not None or r.protocols is not None for r in records)
        columns = [observed, status_column, protocol, *((grade, accepted) if probed else ())]
        columns += [leaf, issuer, expires, problems]
        console.print(
            fit_table(columns, width=console.width, steps=HISTORY_TABLE_STEPS, style=_STORE_TABLE)
        )


def _issuer_cn(issuer: str | None) -> str:
    if not issuer:
        return ""
    for part in issuer.split(","):
        if part.strip().upper().startswith("CN="):
            return part.strip()[3:]
    return issuer


def change_json(change: Change) -> dict[str, Any]:
    """One change at an endpoint as a JSON object."""
    return {
        "kind": change.kind.value,
        "observed_at_utc": _iso(change.observed_at_utc),
        "before": change.before,
        "after": change.after,
        "message": change.message,
    }


def render_changes_json(
    changes: Sequence[tuple[EndpointRecord, Sequence[Change]]],
    stream: TextIO,
    *,
    since_utc: datetime,
) -> None:
    """Writes one JSON document with each endpoint that changed and its changes, oldest first."""
    document = {
        "since_utc": _iso(since_utc),
        "endpoints": _endpoints_with(changes, "changes", change_json),
    }
    _write_document(document, stream)


def render_changes_table(
    changes: Sequence[tuple[EndpointRecord, Sequence[Change]]],
    stream: TextIO,
    *,
    color: bool | None = None,
) -> None:
    """Prints one row per change: when, where, what, and the sentence that says it."""
    console = _console(stream, color=color)
    observed = Column(header="observed (UTC)", short_header="observed", short_cells=[])
    where = Column(header="endpoint", fit=Fit.WRAP, min_width=8)
    kind = Column(header="change")
    what = Column(header="what happened", fit=Fit.WRAP, min_width=24)
    short_observed: list[Text] = []
    for endpoint, endpoint_changes in changes:
        for change in endpoint_changes:
            observed.cells.append(Text(f"{change.observed_at_utc:%Y-%m-%d %H:%M:%S}"))
            short_observed.append(Text(f"{change.observed_at_utc:%m-%d %H:%M}"))
            where.cells.append(cell(str(endpoint.target)))
            kind.cells.append(Text(change.kind.value, style=_CHANGE_STYLE.get(change.kind, "")))
            what.cells.append(cell(change.message))
    observed.short_cells = short_observed
    console.print(
        fit_table(
            [observed, where, kind, what],
            width=console.width,
            steps=CHANGES_TABLE_STEPS,
            style=_STORE_TABLE,
        )
    )


_CHANGE_STYLE = {
    ChangeKind.REVOKED: "bold red",
    ChangeKind.GRADE_DROPPED: "yellow",
    ChangeKind.GRADE_RAISED: "green",
    ChangeKind.PROTOCOL_ENABLED: "yellow",
    ChangeKind.CHAIN_BROKE: "bold red",
    ChangeKind.ENDPOINT_FAILED: "magenta",
    ChangeKind.HOSTNAME_MISMATCH_APPEARED: "bold red",
    ChangeKind.PROTOCOL_DOWNGRADED: "yellow",
    ChangeKind.ISSUER_CHANGED: "yellow",
    ChangeKind.CERTIFICATE_ROTATED: "cyan",
    ChangeKind.CHAIN_REPAIRED: "green",
    ChangeKind.ENDPOINT_RECOVERED: "green",
    ChangeKind.HOSTNAME_MISMATCH_CLEARED: "green",
    ChangeKind.PROTOCOL_UPGRADED: "green",
}


def deployment_json(deployment: DeploymentRecord) -> dict[str, Any]:
    """Where one certificate is or was served, as a JSON object."""
    return {
        **_endpoint_key_json(deployment.target),
        "chain_position": deployment.chain_position,
        "first_seen_utc": _iso(deployment.first_seen_utc),
        "last_seen_utc": _iso(deployment.last_seen_utc),
        "is_current": deployment.is_current,
    }


def render_deployments_json(
    found: Sequence[tuple[str, CertificateFacts | None, Sequence[DeploymentRecord]]],
    stream: TextIO,
) -> None:
    """Writes one JSON document: each certificate asked about and where it is or was served."""
    document = {
        "certificates": [
            {
                "sha256_hex": sha256_hex,
                "subject": facts.subject if facts is not None else None,
                "issuer": facts.issuer if facts is not None else None,
                "not_after_utc": _iso(facts.not_after_utc) if facts is not None else None,
                "deployments": [deployment_json(d) for d in deployments],
            }
            for sha256_hex, facts, deployments in found
        ]
    }
    _write_document(document, stream)


def render_deployments_table(
    found: Sequence[tuple[str, CertificateFacts | None, Sequence[DeploymentRecord]]],
    stream: TextIO,
    *,
    color: bool | None = None,
) -> None:
    """Prints, per certificate, the endpoints that serve it now and those that did."""
    console = _console(stream, color=color)
    for sha256_hex, facts, deployments in found:
        title = cell(sha256_hex, style="bold")
        if facts is not None:
            title.append(
                f"  {visible(facts.subject_cn or facts.subject)}, issued by "
                f"{visible(facts.issuer_cn or facts.issuer)}, "
                f"expires {facts.not_after_utc:%Y-%m-%d}"
            )
        console.print(title)
        if not deployments:
            console.print("  never seen at any endpoint")
            continue
        endpoint = Column(header="endpoint", fit=Fit.WRAP, min_width=8)
        position = Column(header="position")
        first = Column(header="first seen (UTC)", short_header="first seen", short_cells=[])
        last = Column(header="last seen (UTC)", short_header="last seen", short_cells=[])
        now = Column(header="now")
        short_first: list[Text] = []
        short_last: list[Text] = []
        for d in deployments:
            endpoint.cells.append(cell(str(d.target)))
            position.cells.append(
                Text("leaf" if d.chain_position == 0 else f"chain #{d.chain_position}")
            )
            first.cells.append(Text(f"{d.first_seen_utc:%Y-%m-%d %H:%M}"))
            last.cells.append(Text(f"{d.last_seen_utc:%Y-%m-%d %H:%M}"))
            short_first.append(Text(f"{d.first_seen_utc:%Y-%m-%d}"))
            short_last.append(Text(f"{d.last_seen_utc:%Y-%m-%d}"))
            now.cells.append(
                Text("served", style="green") if d.is_current else Text("replaced", style="dim")
            )
        first.short_cells, last.short_cells = short_first, short_last
        console.print(
            fit_table(
                [endpoint, position, first, last, now],
                width=console.width,
                steps=DEPLOYMENTS_TABLE_STEPS,
                style=_STORE_TABLE,
            )
        )


ALERTS_TABLE_STEPS: tuple[Step, ...] = (
    drop("KIND"),
    shorten("OPENED"),
    drop("SENT"),
    drop("OPENED"),
    drop("STATE"),
    drop("SEVERITY"),
)
"""What the ``alerts list`` table gives up, first to last, on a narrow screen."""


def render_alerts_table(
    alerts: Sequence[tuple[AlertRecord, str]], stream: TextIO, *, color: bool | None = None
) -> None:
    """Prints one row per alert: id, state, severity, kind, endpoint, when, what, deliveries.

    Args:
        alerts: Each alert with a summary of its deliveries (``2 sent, 1 failed``).
        stream: Where to print.
        color: Force colour on or off; ``None`` asks the stream.
    """
    console = _console(stream, color=color)
    ident = Column(header="ID", justify="right")
    state = Column(header="STATE", fit=Fit.CLIP, min_width=12)
    severity = Column(header="SEVERITY")
    kind = Column(header="KIND")
    endpoint = Column(header="ENDPOINT", fit=Fit.WRAP, min_width=8)
    opened = Column(header="OPENED", short_cells=[])
    summary = Column(header="SUMMARY", fit=Fit.CLIP, min_width=24)
    sent = Column(header="SENT", fit=Fit.CLIP, min_width=8)
    short_opened: list[Text] = []
    for alert, deliveries in alerts:
        who = f" ({alert.acknowledged_by})" if alert.acknowledged_by else ""
        ident.cells.append(Text(str(alert.id)))
        state.cells.append(cell(alert.state.value + who))
        severity.cells.append(
            Text(alert.severity.value, style=_SEVERITY_STYLE.get(alert.severity, ""))
        )
        kind.cells.append(cell(alert.kind))
        endpoint.cells.append(cell(str(alert.target) if alert.target is not None else "-"))
        opened.cells.append(Text(alert.opened_at_utc.strftime("%Y-%m-%d %H:%M")))
        short_opened.append(Text(alert.opened_at_utc.strftime("%m-%d %H:%M")))
        summary.cells.append(cell(alert.summary))
        sent.cells.append(cell(deliveries))
    opened.short_cells = short_opened
    console.print(
        fit_table(
            [ident, state, severity, kind, endpoint, opened, summary, sent],
            width=console.width,
            steps=ALERTS_TABLE_STEPS,
            style=TableStyle(box=False, header_style="bold"),
        )
    )
