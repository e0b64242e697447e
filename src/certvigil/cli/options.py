"""Command-line options shared by several commands, declared once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

CaFilesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--ca-file",
        metavar="PEM",
        help="Also trust the CA certificates in this file (PEM, DER, PKCS#7). Repeatable.",
        show_default=False,
    ),
]
"""``--ca-file``: extra trust anchors, added to the default ones."""

SystemTrustOption = Annotated[
    bool,
    typer.Option("--system-trust", help="Also trust the operating system's CA bundle."),
]
"""``--system-trust``: add the operating system's bundle to the anchors."""

DefaultCaOption = Annotated[
    bool,
    typer.Option(
        "--default-ca/--no-default-ca",
        help="Trust Mozilla's roots (certifi); --no-default-ca trusts only --ca-file.",
    ),
]
"""``--default-ca/--no-default-ca``: whether Mozilla's roots are anchors."""

ThresholdsOption = Annotated[
    list[int] | None,
    typer.Option(
        "--threshold",
        metavar="DAYS",
        help="Expiry threshold in days; repeatable \\[default: 30 14 7 1].",
        show_default=False,
    ),
]
"""``--threshold DAYS``: expiry thresholds, repeatable."""

DebugOption = Annotated[bool, typer.Option("--debug", help="Tracebacks for errors.")]
"""``--debug``: declared on each command so it may follow it; ``app.main`` reads it."""

ConnectTimeoutOption = Annotated[
    float, typer.Option("--connect-timeout", metavar="S", help="TCP connect limit, seconds.")
]
"""``--connect-timeout S``: the TCP connect limit."""

HandshakeTimeoutOption = Annotated[
    float,
    typer.Option("--handshake-timeout", metavar="S", help="TLS handshake limit, seconds."),
]
"""``--handshake-timeout S``: the TLS handshake limit."""

ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar on stderr \\[default: when stderr is a terminal].",
        show_default=False,
    ),
]
"""``--progress/--no-progress``: ``None`` draws the bar when stderr is a terminal."""

OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", metavar="FILE", help="Write results to FILE."),
]
"""``--output FILE``: results to a file instead of stdout."""

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Database URL or SQLite file (default: the configuration's database_url, "
        "else $CERTVIGIL_DATABASE_URL, else the default path; see docs/store.md).",
    ),
]
"""``--db``: the inventory to read (store commands)."""

StoreConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        help="Take the database from this configuration (default: $CERTVIGIL_CONFIG, else "
        "./certvigil.yaml, ~/.config/certvigil/, /etc/certvigil/).",
    ),
]
"""``--config``: the configuration whose ``database_url`` names the inventory."""

HostGlobOption = Annotated[
    str | None,
    typer.Option("--host", metavar="GLOB", help="Only hosts matching GLOB (internal*)."),
]
"""``--host``: a glob over the endpoints' host names (store commands)."""

TagOption = Annotated[
    str | None, typer.Option("--tag", metavar="TAG", help="Only endpoints tagged TAG.")
]
"""``--tag``: only endpoints carrying this label (store commands)."""

JsonDocumentOption = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]
"""``--json``: one JSON document on stdout instead of the table."""
