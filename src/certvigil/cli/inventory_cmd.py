"""``certvigil inventory`` and ``certvigil history``: what the store knows.

Exit codes: ``inventory`` exits 0, or with ``--expiring-within`` it exits 2 when a
listed certificate has already expired, 1 when one expires within the window and 0
when none does, so it can stand in a cron job or a monitoring check. ``history``
exits 0, or 3 when the endpoint was never observed. Both exit 64 on a bad option or
database URL, and 3 when the database cannot be read.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.errors import UsageError
from certvigil.output.inventory import (
    render_history_json,
    render_history_table,
    render_inventory_csv,
    render_inventory_json,
    render_inventory_table,
)
from certvigil.store import Store, open_store
from certvigil.store.engine import resolve_database_url
from certvigil.store.records import EndpointRecord, ObservationRecord
from certvigil.targets import normalise_hostname, parse_port

DB_HELP = (
    "Database URL or SQLite file (default: $CERTVIGIL_DATABASE_URL, else the database "
    "named in --config, else the default path; see docs/store.md)."
)


def _database_url(db: str | None, config: Path | None) -> str | None:
    if db:
        return db
    if config is not None:
        from certvigil.config.loading import load_config

        url = load_config(config).config.database_url
        return str(url) if url else None
    return None


def open_existing_store(db: str | None, config: Path | None) -> Store:
    """Opens the store, refusing to create an empty SQLite file for a read command."""
    url = _database_url(db, config)
    resolved = resolve_database_url(url)
    if resolved.get_backend_name() == "sqlite":
        path = Path(resolved.database or "")
        if not path.exists():
            raise UsageError(f"database {path}: does not exist (nothing has been recorded yet)")
    return open_store(url)


@app.command("inventory")
def inventory_command(
    expiring_within: Annotated[
        float | None,
        typer.Option(
            "--expiring-within",
            metavar="DAYS",
            min=0,
            help="Only certificates expiring within DAYS (expired ones included).",
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", metavar="GLOB", help="Only hosts matching GLOB (internal*)."),
    ] = None,
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", metavar="TEXT", help="Only issuers containing TEXT."),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", metavar="TAG", help="Only endpoints tagged TAG.")
    ] = None,
    chain: Annotated[
        bool, typer.Option("--chain", help="Include intermediates, not only leaves.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on stdout.")] = False,
    db: Annotated[str | None, typer.Option("--db", metavar="URL", help=DB_HELP)] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH", help="Configuration naming the database."),
    ] = None,
) -> None:
    """List deployed certificates, soonest expiry first."""
    if as_json and as_csv:
        raise UsageError("--json and --csv cannot be used together")
    now = datetime.now(UTC)
    with open_existing_store(db, config) as store:
        rows = store.inventory(
            now=now,
            expiring_within_days=expiring_within,
            host_glob=host,
            issuer=issuer,
            tag=tag,
            include_chain=chain,
        )
    query: dict[str, Any] = {
        "expiring_within_days": expiring_within,
        "host": host,
        "issuer": issuer,
        "tag": tag,
        "include_chain": chain,
    }
    if as_json:
        render_inventory_json(rows, sys.stdout, now=now, query=query)
    elif as_csv:
        render_inventory_csv(rows, sys.stdout, now=now)
    else:
        warn_days = int(expiring_within) if expiring_within is not None else 30
        render_inventory_table(rows, sys.stdout, now=now, warn_days=warn_days)
        sys.stderr.write(f"{len(rows)} certificate{'s' if len(rows) != 1 else ''}\n")
    if expiring_within is None or not rows:
        raise typer.Exit(ExitCode.OK)
    if any(r.not_after_utc <= now for r in rows):
        raise typer.Exit(ExitCode.CRITICAL)
    raise typer.Exit(ExitCode.WARNING)


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


@app.command("history")
def history_command(
    endpoint: Annotated[
        str, typer.Argument(metavar="HOST:PORT", help="The endpoint (every port if omitted).")
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Observations to show per endpoint.")
    ] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    db: Annotated[str | None, typer.Option("--db", metavar="URL", help=DB_HELP)] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="PATH", help="Configuration naming the database."),
    ] = None,
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
        sys.stderr.write(f"error: {endpoint}: never observed in {store.url}\n")
        raise typer.Exit(ExitCode.UNKNOWN)
    if as_json:
        render_history_json(histories, sys.stdout)
    else:
        render_history_table(histories, sys.stdout)
