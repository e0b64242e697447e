"""``certvigil changes`` and ``certvigil where``: what changed, and where a certificate is served.

Exit codes: ``changes`` exits 0 when nothing changed in the period and 1 when something
did, so ``certvigil changes --since 1d || notify`` works from cron; ``where`` exits 0
when the certificate was seen at some endpoint and 3 when it never was. Both exit 64 on
a bad option or database URL, and 74 when the database cannot be read.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path
from typing import Annotated

import typer

from certvigil.analysis.model import CertificateFacts
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    FILTERS_PANEL,
    DatabaseOption,
    HostGlobOption,
    JsonDocumentOption,
    StoreConfigOption,
    TagOption,
    parse_since,
)
from certvigil.cli.store_access import open_existing_store
from certvigil.errors import CertificateLoadError, UsageError
from certvigil.files.certificates import load_certificate_file
from certvigil.output.inventory import (
    render_changes_json,
    render_changes_table,
    render_deployments_json,
    render_deployments_table,
)
from certvigil.store import Store
from certvigil.store.queries import normalise_fingerprint
from certvigil.store.records import DeploymentRecord

CHANGES_EXAMPLES = """[bold]Examples[/bold]
certvigil changes
certvigil changes --since 7d --tag prod
certvigil changes --since 2026-11-20 --json"""


@app.command("changes", epilog=CHANGES_EXAMPLES)
def changes_command(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            metavar="WHEN",
            help='Period start: a duration back from now ("24h", "7d") or a UTC time.',
            rich_help_panel=FILTERS_PANEL,
        ),
    ] = "24h",
    host: HostGlobOption = None,
    tag: TagOption = None,
    as_json: JsonDocumentOption = False,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Show what changed at the endpoints, oldest first.

    Rotations, issuer changes, downgrades, broken chains, name mismatches, failures, recoveries.
    """
    since_utc = parse_since(since, now=datetime.now(UTC))
    with open_existing_store(db, config) as store:
        changes = store.changes_since(since_utc, host_glob=host, tag=tag)
    if as_json:
        render_changes_json(changes, sys.stdout, since_utc=since_utc)
    else:
        render_changes_table(changes, sys.stdout)
        count = sum(len(c) for _e, c in changes)
        sys.stderr.write(
            f"{count} change{'s' if count != 1 else ''} at {len(changes)} "
            f"endpoint{'s' if len(changes) != 1 else ''} since {since_utc:%Y-%m-%d %H:%M} UTC\n"
        )
    raise typer.Exit(ExitCode.WARNING if changes else ExitCode.OK)


MIN_PREFIX_DIGITS = 8
"""The shortest fingerprint prefix ``where`` accepts (inventory shows 16 digits)."""

_HEX = re.compile(r"[0-9a-f]+")
_FILE_SUFFIXES = (".pem", ".crt", ".cer", ".der", ".p7b", ".p7c", ".cert")


def fingerprints_of(certificate: str) -> tuple[str, ...]:
    """The SHA-256 fingerprints a ``where`` argument stands for, or a prefix to look up.

    Args:
        certificate: A SHA-256 fingerprint or a prefix of one of at least
            ``MIN_PREFIX_DIGITS`` hex digits (colons and spaces allowed), or a
            certificate file (PEM, DER or PKCS#7; every certificate in it).

    Returns:
        The fingerprints of a file's certificates, or the one fingerprint or prefix
        given (a prefix is shorter than 64 digits; :func:`resolve_prefix` completes it).

    Raises:
        UsageError: A file that cannot be read or holds no usable certificate, a path
            that names no file, or text that is neither.
    """
    path = Path(certificate)
    if path.is_file():
        try:
            return tuple(sha256(der).hexdigest() for der in load_certificate_file(path))
        except CertificateLoadError as exc:
            raise UsageError(str(exc)) from exc
    text = normalise_fingerprint(certificate)
    if _HEX.fullmatch(text) and MIN_PREFIX_DIGITS <= len(text) <= 64:
        return (text,)
    if path.exists():
        raise UsageError(f"{certificate}: not a file (a directory?)")
    if "/" in certificate or certificate.lower().endswith(_FILE_SUFFIXES):
        raise UsageError(f"{certificate}: no such file")
    raise UsageError(
        f'"{certificate}": neither a certificate file nor a SHA-256 fingerprint '
        f"(64 hex digits, or the first {MIN_PREFIX_DIGITS} or more of them)"
    )


def resolve_prefix(store: Store, text: str) -> str | None:
    """The one stored fingerprint ``text`` stands for (itself when it has 64 digits).

    Returns:
        The full fingerprint, or ``None`` when no recorded certificate's starts so.

    Raises:
        UsageError: Several recorded certificates start with ``text``; the message
            lists them (up to ten).
    """
    if len(text) == 64:
        return text
    matches = store.fingerprints_with_prefix(text, limit=11)
    if len(matches) > 1:
        shown = ", ".join(matches[:10]) + (", …" if len(matches) > 10 else "")
        raise UsageError(
            f'"{text}" is the start of several certificates\' fingerprints ({shown}); '
            "give more digits"
        )
    return matches[0] if matches else None


WHERE_EXAMPLES = """[bold]Examples[/bold]
certvigil where fullchain.pem
certvigil where 3f2a9c...e41b --current
certvigil where old-cert.pem new-cert.pem --json"""


@app.command("where", epilog=WHERE_EXAMPLES)
def where_command(
    certificates: Annotated[
        list[str],
        typer.Argument(
            metavar="CERT...",
            help="SHA-256 fingerprints or certificate files (PEM, DER, PKCS#7).",
            show_default=False,
        ),
    ],
    current: Annotated[
        bool,
        typer.Option(
            "--current", help="Only endpoints that serve it now.", rich_help_panel=FILTERS_PANEL
        ),
    ] = False,
    as_json: JsonDocumentOption = False,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Show where certificates are served, and where they were.

    Every endpoint that served each certificate, with when it was first and last seen.
    """
    wanted = [f for c in certificates for f in fingerprints_of(c)]
    found: list[tuple[str, CertificateFacts | None, tuple[DeploymentRecord, ...]]] = []
    unknown: list[str] = []
    with open_existing_store(db, config) as store:
        fingerprints: list[str] = []
        for text in wanted:
            fingerprint = resolve_prefix(store, text)
            if fingerprint is None:
                unknown.append(text)
            else:
                fingerprints.append(fingerprint)
        for fingerprint in dict.fromkeys(fingerprints):
            deployments = store.certificate_deployments(fingerprint, current_only=current)
            found.append((fingerprint, store.get_certificate(fingerprint), deployments))
    if as_json:
        render_deployments_json(found, sys.stdout)
    else:
        render_deployments_table(found, sys.stdout)
    for text in unknown:
        sys.stderr.write(f"error: no recorded certificate's fingerprint starts with {text}\n")
    seen = not unknown and all(deployments for _f, _facts, deployments in found)
    raise typer.Exit(ExitCode.OK if seen else ExitCode.UNKNOWN)
