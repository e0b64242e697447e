"""``certvigil users add|list|remove``: who may log in to the web dashboard.

Passwords are kept only as argon2id hashes. ``add`` reads the password from
``--password-file`` (its first line) or asks for it twice on the terminal; it never
takes one as an option, where it would be left in the shell history and process list.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from certvigil.cli.app import app
from certvigil.cli.options import DatabaseOption, StoreConfigOption
from certvigil.cli.store_access import database_url, open_existing_store
from certvigil.errors import UsageError
from certvigil.output.safe_text import visible
from certvigil.server.dashboard.auth import hash_password
from certvigil.store import dashboard as board
from certvigil.store import open_store

users_app = typer.Typer(
    name="users",
    help="Add, list and remove the people who may log in to the web dashboard.",
    no_args_is_help=True,
)
app.add_typer(users_app, name="users")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")
_PASSWORD_FILE_MAX_BYTES = 4096

NameOption = Annotated[
    str,
    typer.Option(
        "--name",
        metavar="NAME",
        help="The log-in name: letters, digits, '.', '_', '@', '-'; at most 100.",
    ),
]


def _checked_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"--name '{visible(name)}': use letters, digits, '.', '_', '@' or '-' "
            "(starting with a letter or digit), at most 100 characters"
        )
    return name


def _read_password_file(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(_PASSWORD_FILE_MAX_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"--password-file {path}: {exc.strerror or exc}") from exc
    if len(data) > _PASSWORD_FILE_MAX_BYTES:
        raise UsageError(f"--password-file {path}: larger than {_PASSWORD_FILE_MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--password-file {path}: not UTF-8 text") from exc
    lines = text.splitlines()
    return lines[0] if lines else ""


ADD_EXAMPLES = """[bold]Examples[/bold]
certvigil users add -c certvigil.yaml --name alice
certvigil users add -c certvigil.yaml --name noc --role viewer
certvigil users add -c certvigil.yaml --name ci --password-file /run/secrets/pw"""


@users_app.command("add", epilog=ADD_EXAMPLES)
def add_command(
    name: NameOption,
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            metavar="FILE",
            help="Read the password from this file's first line (default: ask twice).",
        ),
    ] = None,
    role: Annotated[
        board.UserRole,
        typer.Option(
            "--role",
            metavar="ROLE",
            help="admin (may acknowledge and resolve alerts) or viewer (reads only).",
            case_sensitive=False,
        ),
    ] = board.UserRole.ADMIN,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Add a dashboard user with a password (at least 8 characters) and a role."""
    name = _checked_name(name)
    if password_file is not None:
        password = _read_password_file(password_file)
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        raise UsageError("no terminal to ask for the password: give --password-file FILE")
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    with open_store(database_url(db, config)) as store, store.write() as connection:
        try:
            board.add_user(
                connection,
                name=name,
                password_hash=password_hash,
                now=datetime.now(UTC),
                role=role,
            )
        except board.UserExistsError as exc:
            raise UsageError(f"{exc}; remove it first to set a new password") from exc
    Console(stderr=True).print(f"user {name} added ({role.value})", markup=False, highlight=False)


LIST_EXAMPLES = """[bold]Examples[/bold]
certvigil users list -c certvigil.yaml"""


@users_app.command("list", epilog=LIST_EXAMPLES)
def list_command(db: DatabaseOption = None, config: StoreConfigOption = None) -> None:
    """List dashboard users, one per line: name, role and when they were added."""
    with open_existing_store(db, config) as store, store.read() as connection:
        users = board.list_users(connection)
    for user in users:
        typer.echo(
            f"{visible(user.name)}\t{user.role.value}\t"
            f"{user.created_at_utc.isoformat(timespec='seconds')}"
        )
    if not users:
        Console(stderr=True).print("no dashboard users", markup=False)


REMOVE_EXAMPLES = """[bold]Examples[/bold]
certvigil users remove -c certvigil.yaml --name alice"""


@users_app.command("remove", epilog=REMOVE_EXAMPLES)
def remove_command(
    name: NameOption, db: DatabaseOption = None, config: StoreConfigOption = None
) -> None:
    """Remove a dashboard user; their sessions end at once."""
    with open_existing_store(db, config) as store, store.write() as connection:
        removed = board.remove_user(connection, name)
    if not removed:
        raise UsageError(f"no dashboard user '{visible(name)}'")
    Console(stderr=True).print(f"user {visible(name)} removed", markup=False, highlight=False)
