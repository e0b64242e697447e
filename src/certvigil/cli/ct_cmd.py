"""``certvigil ct``: the Certificate Transparency commands (the group; each part adds its own)."""

from __future__ import annotations

import typer

from certvigil.cli import ct_names_cmd
from certvigil.cli.app import app

ct_app = typer.Typer(
    name="ct",
    help="Certificate Transparency: search, look-alike and keyword rules, a certstream feed.",
    no_args_is_help=True,
)
app.add_typer(ct_app, name="ct")
ct_names_cmd.register(ct_app)
