"""``certvigil keys``: API keys of the server (create, list, revoke).

``keys create`` prints the new key alone on stdout, once; only its hash is stored, so
it cannot be shown again (revoke it and make another).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from certvigil.cli.app import app
from certvigil.cli.options import DebugOption
from certvigil.cli.store_access import database_url
from certvigil.errors import UsageError
from certvigil.output.safe_text import visible
from certvigil.server.keys import Scope, check_key_name, create_key
from certvigil.store import open_store
from certvigil.store import server_queries as sq

keys_app = typer.Typer(
    help="Manage the server's API keys (scopes: agent, read, admin).",
    epilog=(
        "[bold]Examples[/bold]\n"
        "certvigil keys create --config server.yaml --name lab-a --scope agent\n"
        "certvigil keys list --config server.yaml\n"
        "certvigil keys revoke --config server.yaml --name lab-a"
    ),
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

ConfigOption = Annotated[
    Path,
    typer.Option("--config", "-c", metavar="FILE", help="The server's configuration file."),
]
NameOption = Annotated[
    str, typer.Option("--name", metavar="NAME", help="The key's name (an agent's name).")
]


@keys_app.command(
    "create",
    epilog=(
        "[bold]Examples[/bold]\n"
        "certvigil keys create -c server.yaml --name lab-a --scope agent > lab-a.key\n"
        "certvigil keys create -c server.yaml --name grafana --scope read"
    ),
)
def create_command(
    config: ConfigOption,
    name: NameOption,
    scope: Annotated[
        Scope,
        typer.Option(
            "--scope",
            metavar="SCOPE",
            help="agent (report, read own targets), read, or admin.",
            case_sensitive=False,
        ),
    ],
    debug: DebugOption = False,
) -> None:
    """Make a key and print it alone on stdout (it is shown this once)."""
    del debug
    check_key_name(name)
    with open_store(database_url(None, config)) as store:
        new = create_key(store, name=name, scope=scope, now=datetime.now(UTC))
    typer.echo(new.token)
    typer.echo(f"key {name!r} ({scope.value}) created; it is not shown again", err=True)


@keys_app.command(
    "list",
    epilog="[bold]Examples[/bold]\ncertvigil keys list -c server.yaml",
)
def list_command(config: ConfigOption, debug: DebugOption = False) -> None:
    """List keys: name, scope, created, revoked (never the keys themselves)."""
    del debug
    with open_store(database_url(None, config)) as store, store.read() as connection:
        keys = sq.list_api_keys(connection)
    if not keys:
        typer.echo("no keys; make one with certvigil keys create", err=True)
        return
    typer.echo(f"{'NAME':<24} {'SCOPE':<6} {'CREATED':<20} REVOKED")
    for key in keys:
        revoked = key.revoked_at_utc.strftime("%Y-%m-%d %H:%M") if key.revoked_at_utc else "-"
        typer.echo(
            f"{visible(key.name):<24} {key.scope:<6} "
            f"{key.created_at_utc.strftime('%Y-%m-%d %H:%M'):<20} {revoked}"
        )


@keys_app.command(
    "revoke",
    epilog="[bold]Examples[/bold]\ncertvigil keys revoke -c server.yaml --name lab-a",
)
def revoke_command(config: ConfigOption, name: NameOption, debug: DebugOption = False) -> None:
    """Revoke a key: requests with it are refused (401) from now on."""
    del debug
    with open_store(database_url(None, config)) as store, store.write() as connection:
        if not sq.revoke_api_key(connection, name, now=datetime.now(UTC)):
            raise UsageError(f"key {name!r}: no valid key by that name")
    typer.echo(f"key {name!r} revoked", err=True)
