"""``certvigil alerts list|ack|resolve|deliveries|test``: alerts, their lifecycle, their delivery.

Exit codes: ``list`` follows the table every command shares: 2 when a critical alert is
active (open or acknowledged) among those asked for, 1 when a warning is, else 0 — so a
cron job can run it. ``deliveries`` and ``test`` exit 75 (EX_TEMPFAIL) when a
notification is failing, else 0.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from certvigil.alerts.engine import AlertEngine
from certvigil.analysis.model import Severity, worst
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import DatabaseOption, JsonDocumentOption, StoreConfigOption
from certvigil.cli.store_access import open_existing_store
from certvigil.errors import UsageError
from certvigil.output.inventory import render_alerts_table
from certvigil.output.safe_text import markup, visible
from certvigil.store import AlertRecord, AlertState, DeliveryRecord, DeliveryStatus
from certvigil.store.outbox import count_failing, list_deliveries

alerts_app = typer.Typer(
    name="alerts",
    help="List alerts, acknowledge them, resolve them; see and test their delivery.",
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


def _severity_exit(severities: list[Severity]) -> ExitCode:
    level = worst(severities)
    if level is Severity.CRITICAL:
        return ExitCode.CRITICAL
    if level is Severity.WARNING:
        return ExitCode.WARNING
    return ExitCode.OK


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
    """List alerts, newest first, with where their notifications stand.

    Exit code: 2 if a critical alert is active (open or acknowledged), 1 if a warning is.

    Else 0. --limit does not hide an active alert from the exit code.
    """
    with open_existing_store(db, config) as store:
        engine = AlertEngine(store)
        alerts = engine.list_alerts(states=_STATES[state], limit=limit)
        by_alert: dict[int, list[DeliveryRecord]] = {a.id: [] for a in alerts}
        if alerts:
            with store.read() as connection:
                for d in list_deliveries(connection):
                    if d.alert_id in by_alert:
                        by_alert[d.alert_id].append(d)
        active = [s for s in (_STATES[state] or tuple(AlertState)) if s is not AlertState.RESOLVED]
        code = _severity_exit(
            [a.severity for a in engine.list_alerts(states=active)] if active else []
        )
    if as_json:
        document = {"alerts": [_alert_json(a, by_alert[a.id]) for a in alerts]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(code)
    if not alerts:
        Console(stderr=True).print(f"no {state.value} alerts", markup=False)
        raise typer.Exit(code)
    render_alerts_table([(a, _delivery_summary(by_alert[a.id])) for a in alerts], sys.stdout)
    raise typer.Exit(code)


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


def _cell_markup(text: object) -> str:
    """Text from the database for a table cell: visible, never read as markup."""
    return markup(str(text))


_UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.FAILED)


def _route_name(route_key: str) -> str:
    return route_key.rpartition("#")[0] or route_key


DELIVERIES_EXAMPLES = """[bold]Examples[/bold]
certvigil alerts deliveries
certvigil alerts deliveries --all --limit 50
certvigil alerts deliveries --json -c /etc/certvigil/certvigil.yaml"""


@alerts_app.command("deliveries", epilog=DELIVERIES_EXAMPLES)
def deliveries_command(
    include_sent: Annotated[
        bool, typer.Option("--all", help="Sent deliveries too (oldest first).")
    ] = False,
    as_json: JsonDocumentOption = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 500,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """List notifications not yet delivered (pending, sending, failed) with their last error.

    Exits 75 when a delivery is still failing (it failed and a retry is due), else 0.
    """
    statuses = None if include_sent else _UNSENT
    with open_existing_store(db, config) as store:
        with store.read() as connection:
            rows = list_deliveries(connection, statuses=statuses, limit=limit)
            failing = count_failing(connection)
        found = (store.get_alert(i) for i in {d.alert_id for d in rows})
        alerts = {a.id: a for a in found if a is not None}
    code = ExitCode.DELIVERY_FAILING if failing else ExitCode.OK
    if as_json:
        document = {
            "failing": failing,
            "deliveries": [
                {
                    **_delivery_json(d),
                    "route": _route_name(d.route),
                    "alert_id": d.alert_id,
                    "alert_summary": alerts[d.alert_id].summary if d.alert_id in alerts else None,
                    "idempotency_key": d.idempotency_key,
                    "created_at": _iso(d.created_at_utc),
                }
                for d in rows
            ],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(code)
    if not rows:
        Console(stderr=True).print("no deliveries waiting" if not include_sent else "no deliveries")
        raise typer.Exit(code)
    table = Table(box=None, header_style="bold")
    for column in ("ID", "ALERT", "EVENT", "ROUTE", "STATUS", "TRIES", "NEXT TRY", "LAST ERROR"):
        table.add_column(column, overflow="fold")
    for d in rows:
        alert = alerts.get(d.alert_id)
        table.add_row(
            str(d.id),
            f"#{d.alert_id} {_cell_markup(alert.summary)}"
            if alert is not None
            else f"#{d.alert_id}",
            _cell_markup(d.event),
            _cell_markup(_route_name(d.route)),
            d.status.value,
            str(d.attempts),
            d.next_attempt_at_utc.strftime("%Y-%m-%d %H:%M")
            if d.status is DeliveryStatus.PENDING
            else "-",
            _cell_markup(d.last_error) if d.last_error else "-",
        )
    Console(soft_wrap=False, width=200).print(table)
    raise typer.Exit(code)


TEST_EXAMPLES = """[bold]Examples[/bold]
certvigil alerts test -c /etc/certvigil/certvigil.yaml
certvigil alerts test -c certvigil.yaml --route oncall --json"""


@alerts_app.command("test", epilog=TEST_EXAMPLES)
def test_command(
    route: Annotated[
        str | None, typer.Option("--route", metavar="NAME", help="Only the route named NAME.")
    ] = None,
    as_json: JsonDocumentOption = False,
    timeout: Annotated[
        float, typer.Option("--timeout", metavar="S", min=1, max=300, help="Per route, seconds.")
    ] = 30.0,
    config: StoreConfigOption = None,
) -> None:
    """Send a test notification through each configured route (or one) and say how it went.

    Exits 75 when a route did not take it, else 0.
    """
    from certvigil.alerts.delivery import sample_notification, send_direct
    from certvigil.alerts.routing import routes_from_config
    from certvigil.config.discovery import require_config
    from certvigil.config.loading import load_config

    config = require_config(config)  # the routes are in the configuration, found as run finds it
    routes = routes_from_config(load_config(config).config.alerts.routes)
    if route is not None:
        chosen = tuple(r for r in routes if r.name == route)
        if not chosen:
            names = ", ".join(sorted({r.name for r in routes})) or "none"
            raise UsageError(f"{config}: no route named {route!r} (routes: {names})")
        routes = chosen
    if not routes:
        raise UsageError(f"{config}: no alert routes configured (alerts.routes)")
    message = sample_notification(datetime.now(UTC))
    results = asyncio.run(send_direct(routes, message, timeout_s=timeout))
    code = ExitCode.OK if all(r.ok for r in results) else ExitCode.DELIVERY_FAILING
    if as_json:
        document = {
            "routes": [
                {"route": r.route, "channel": r.channel, "ok": r.ok, "error": r.error}
                for r in results
            ]
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(code)
    console = Console(soft_wrap=False, width=200)
    for r in results:
        outcome = "ok" if r.ok else f"FAILED: {_cell_markup(r.error)}"
        console.print(
            f"{_cell_markup(r.route)}  {_cell_markup(r.channel)}  {outcome}", highlight=False
        )
    raise typer.Exit(code)
