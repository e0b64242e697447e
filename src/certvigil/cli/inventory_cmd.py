"""``certvigil inventory`` and ``certvigil history``: what the store knows.

Exit codes: ``inventory`` exits 0, or with ``--expiring-within`` it exits 2 when a
listed certificate has already expired, 1 when one expires within the window and 0
when none does, so it can stand in a cron job or a monitoring check; likewise 2 when
``--revoked`` lists anything, 1 when ``--grade-below`` or ``--weak-protocols`` does. ``history``
exits 0, or 3 when the endpoint was never observed. Both exit 64 on a bad option or
database URL, and 74 when the database cannot be read.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    FILTERS_PANEL,
    OUTPUT_PANEL,
    DatabaseOption,
    HostGlobOption,
    JsonDocumentOption,
    StoreConfigOption,
    TagOption,
)
from certvigil.cli.store_access import describe_database, open_existing_store
from certvigil.errors import UsageError
from certvigil.output.inventory import (
    render_history_json,
    render_history_table,
    render_inventory_csv,
    render_inventory_json,
    render_inventory_table,
)
from certvigil.output.safe_text import visible
from certvigil.store.queries import CheckFilter
from certvigil.store.records import EndpointRecord, ObservationRecord
from certvigil.targets.parse import normalise_hostname, parse_port

INVENTORY_EXAMPLES = """[bold]Examples[/bold]
certvigil inventory -c /etc/certvigil/certvigil.yaml
certvigil inventory --expiring-within 30 --tag prod
certvigil inventory --grade-below B --weak-protocols
certvigil inventory --revoked --json
certvigil inventory --host 'internal*' --chain --csv > certificates.csv"""


@app.command("inventory", epilog=INVENTORY_EXAMPLES)
def inventory_command(
    expiring_within: Annotated[
        float | None,
        typer.Option(
            "--expiring-within",
            metavar="DAYS",
            min=0,
            help="Only certificates expiring within DAYS (expired ones included).",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = None,
    host: HostGlobOption = None,
    issuer: Annotated[
        str | None,
        typer.Option(
            "--issuer",
            metavar="TEXT",
            help="Only issuers containing TEXT.",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = None,
    tag: TagOption = None,
    chain: Annotated[
        bool,
        typer.Option(
            "--chain",
            help="Include intermediates, not only leaves.",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = False,
    grade_below: Annotated[
        str | None,
        typer.Option(
            "--grade-below",
            metavar="GRADE",
            help="Only endpoints graded worse than GRADE (A+ A A- B C D E F; T, M lowest).",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = None,
    revoked: Annotated[
        bool,
        typer.Option(
            "--revoked",
            help="Only endpoints whose certificate was found revoked.",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = False,
    weak_protocols: Annotated[
        bool,
        typer.Option(
            "--weak-protocols",
            help="Only endpoints accepting SSLv2, SSLv3, TLS 1.0 or TLS 1.1.",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = False,
    as_json: JsonDocumentOption = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="CSV on stdout.", rich_help_panel=OUTPUT_PANEL)
    ] = False,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """List deployed certificates, soonest expiry first."""
    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together")
    try:
        checks = CheckFilter(
            grade_below=grade_below.strip().upper() if grade_below else None,
            revoked=revoked,
            weak_protocols=weak_protocols,
        )
    except ValueError as exc:
        raise UsageError(f"--grade-below: {exc}") from exc
    now = datetime.now(UTC)
    with open_existing_store(db, config) as store:
        where = describe_database(store)
        rows = store.inventory(
            now=now,
            expiring_within_days=expiring_within,
            host_glob=host,
            issuer=issuer,
            tag=tag,
            include_chain=chain,
            checks=checks,
        )
    query: dict[str, Any] = {
        "expiring_within_days": expiring_within,
        "host": host,
        "issuer": issuer,
        "tag": tag,
        "include_chain": chain,
        "grade_below": checks.grade_below,
        "revoked": revoked,
        "weak_protocols": weak_protocols,
    }
    if as_json:
        render_inventory_json(rows, sys.stdout, now=now, query=query)
    elif as_csv:
        render_inventory_csv(rows, sys.stdout, now=now)
    else:
        warn_days = int(expiring_within) if expiring_within is not None else 30
        render_inventory_table(rows, sys.stdout, now=now, warn_days=warn_days)
        sys.stderr.write(f"{len(rows)} certificate{'s' if len(rows) != 1 else ''} in {where}\n")
    if not rows:
        raise typer.Exit(ExitCode.OK)
    if revoked or (expiring_within is not None and any(r.not_after_utc <= now for r in rows)):
        raise typer.Exit(ExitCode.CRITICAL)
    if expiring_within is not None or grade_below or weak_protocols:
        raise typer.Exit(ExitCode.WARNING)
    raise typer.Exit(ExitCode.OK)


def parse_endpoint(text: str) -> tuple[str, int | None]:
    """Splits ``HOST[:PORT]`` (``[v6]:PORT`` for IPv6) into a host and an optional port.

    Raises:
        UsageError: The text is not a host with an optional valid port.
    """
    raw = text.strip()
    port_text: str | None = None
    if raw.startswith("["):
        host, sep, rest = raw[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f'"{text}": expected [IPv6]:PORT')
        port_text = rest[1:] if rest else None
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
    else:
        host = raw
    try:
        port = parse_port(port_text) if port_text is not None else None
        if ":" not in host and not host.replace(".", "").isdigit():
            host = normalise_hostname(host)
    except ValueError as exc:
        raise UsageError(f'"{text}": {exc}') from exc
    if not host:
        raise UsageError(f'"{text}": empty host')
    return host, port


HISTORY_EXAMPLES = """[bold]Examples[/bold]
certvigil history www.example.com:443
certvigil history mail.example.com --limit 50 --json"""


@app.command("history", epilog=HISTORY_EXAMPLES)
def history_command(
    endpoint: Annotated[
        str,
        typer.Argument(
            metavar="HOST[:PORT]", help="The endpoint; without a port, every port of the host."
        ),
    ],
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            metavar="N",
            min=1,
            help="Observations to show per endpoint.",
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = 20,
    as_json: JsonDocumentOption = False,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Show an endpoint's observations, newest first.

    Every SNI and STARTTLS variant of the host and port is shown.
    """
    host, port = parse_endpoint(endpoint)
    histories: list[tuple[EndpointRecord, tuple[ObservationRecord, ...]]] = []
    with open_existing_store(db, config) as store:
        for record in store.list_endpoints(host=host, port=port):
            histories.append((record, store.endpoint_history(record.id, limit=limit)))
    if not histories:
        sys.stderr.write(f"error: {visible(endpoint)}: never observed in {visible(store.url)}\n")
        raise typer.Exit(ExitCode.UNKNOWN)
    if as_json:
        render_history_json(histories, sys.stdout)
    else:
        render_history_table(histories, sys.stdout)
