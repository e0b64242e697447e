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
