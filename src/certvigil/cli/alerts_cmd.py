"""``certvigil alerts list|ack|resolve``: see alerts and move them along their lifecycle."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console

from certvigil.alerts.engine import AlertEngine
from certvigil.cli.app import app
from certvigil.cli.options import DatabaseOption, JsonDocumentOption, StoreConfigOption
from certvigil.cli.store_access import open_existing_store
from certvigil.output.inventory import render_alerts_table
from certvigil.output.safe_text import visible
from certvigil.store import AlertRecord, AlertState, DeliveryRecord
from certvigil.store.outbox import list_deliveries

alerts_app = typer.Typer(
    name="alerts",
    help="List alerts, acknowledge them, resolve them.",
    no_args_is_help=True,
)
app.add_typer(alerts_app, name="alerts")


class StateFilter(StrEnum):
    """Which alerts ``alerts list`` shows."""

    ACTIVE = "active"
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    ALL = "all"


_STATES = {
    StateFilter.ACTIVE: (AlertState.OPEN, AlertState.ACKNOWLEDGED),
    StateFilter.OPEN: (AlertState.OPEN,),
    StateFilter.ACKNOWLEDGED: (AlertState.ACKNOWLEDGED,),
    StateFilter.RESOLVED: (AlertState.RESOLVED,),
    StateFilter.ALL: None,
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _delivery_json(d: DeliveryRecord) -> dict[str, Any]:
    return {
        "id": d.id,
        "event": d.event,
        "route": d.route,
        "status": d.status.value,
        "attempts": d.attempts,
        "next_attempt_at": _iso(d.next_attempt_at_utc),
        "sent_at": _iso(d.sent_at_utc),
        "last_error": d.last_error,
    }


def _alert_json(a: AlertRecord, deliveries: list[DeliveryRecord]) -> dict[str, Any]:
    return {
        "id": a.id,
        "state": a.state.value,
        "severity": a.severity.value,
        "kind": a.kind,
        "endpoint": str(a.target) if a.target is not None else a.details.get("endpoint"),
        "certificate_sha256": a.certificate_sha256,
        "summary": a.summary,
        "message": a.details.get("message"),
        "dedup_key": a.dedup_key,
        "opened_at": _iso(a.opened_at_utc),
        "acknowledged_at": _iso(a.acknowledged_at_utc),
        "acknowledged_by": a.acknowledged_by,
        "ack_note": a.details.get("ack_note"),
        "resolved_at": _iso(a.resolved_at_utc),
        "resolution": a.details.get("resolution"),
        "deliveries": [_delivery_json(d) for d in deliveries],
    }


def _delivery_summary(deliveries: list[DeliveryRecord]) -> str:
    counts: dict[str, int] = {}
    for d in deliveries:
        counts[d.status.value] = counts.get(d.status.value, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "-"


LIST_EXAMPLES = """[bold]Examples[/bold]
certvigil alerts list
certvigil alerts list --state all --limit 50
certvigil alerts list --json -c /etc/certvigil/certvigil.yaml"""


@alerts_app.command("list", epilog=LIST_EXAMPLES)
def list_command(
    state: Annotated[
        StateFilter,
        typer.Option(
            "--state",
            metavar="STATE",
            help="active (open + acknowledged), open, acknowledged, resolved or all.",
        ),
    ] = StateFilter.ACTIVE,
    as_json: JsonDocumentOption = False,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, help="At most this many.")
    ] = 200,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """List alerts, newest first, with where their notifications stand."""
    with open_existing_store(db, config) as store:
        alerts = AlertEngine(store).list_alerts(states=_STATES[state], limit=limit)
        by_alert: dict[int, list[DeliveryRecord]] = {a.id: [] for a in alerts}
        if alerts:
            with store.read() as connection:
                for d in list_deliveries(connection):
                    if d.alert_id in by_alert:
                        by_alert[d.alert_id].append(d)
    if as_json:
        document = {"alerts": [_alert_json(a, by_alert[a.id]) for a in alerts]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    if not alerts:
        Console(stderr=True).print(f"no {state.value} alerts", markup=False)
        return
    render_alerts_table([(a, _delivery_summary(by_alert[a.id])) for a in alerts], sys.stdout)


ACK_EXAMPLES = """[bold]Examples[/bold]
certvigil alerts ack 42 --by alice
certvigil alerts ack 42 --by alice --note 'renewal ordered, ticket OPS-123'"""


@alerts_app.command("ack", epilog=ACK_EXAMPLES)
def ack_command(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="The alert's id.")],
    by: Annotated[str, typer.Option("--by", metavar="NAME", help="Who takes it.")],
    note: Annotated[
        str | None, typer.Option("--note", metavar="TEXT", help="A remark kept with it.")
    ] = None,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Acknowledge an open alert: someone is on it (it still resolves by itself)."""
    with open_existing_store(db, config) as store:
        alert = AlertEngine(store).acknowledge(alert_id, by=by, now=datetime.now(UTC), note=note)
    Console(stderr=True).print(
        f"alert {alert.id} acknowledged by {visible(alert.acknowledged_by or '')}",
        markup=False,
        highlight=False,
    )


RESOLVE_EXAMPLES = """[bold]Examples[/bold]
certvigil alerts resolve 42
certvigil alerts resolve 42 --by alice --note 'endpoint decommissioned'"""


@alerts_app.command("resolve", epilog=RESOLVE_EXAMPLES)
def resolve_command(
    alert_id: Annotated[int, typer.Argument(metavar="ID", help="The alert's id.")],
    by: Annotated[str | None, typer.Option("--by", metavar="NAME", help="Who resolves it.")] = None,
    note: Annotated[
        str | None, typer.Option("--note", metavar="TEXT", help="Why; sent with it.")
    ] = None,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Resolve an alert by hand; a condition that still holds reopens at the next scan."""
    with open_existing_store(db, config) as store:
        alert = AlertEngine(store).resolve(alert_id, now=datetime.now(UTC), by=by, note=note)
    Console(stderr=True).print(f"alert {alert.id} resolved", markup=False)
