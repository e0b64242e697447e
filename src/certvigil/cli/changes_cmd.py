"""``certvigil changes`` and ``certvigil where``: what changed, and where a certificate is served.

Exit codes: ``changes`` exits 0 when nothing changed in the period and 1 when something
did, so ``certvigil changes --since 1d || notify`` works from cron; ``where`` exits 0
when the certificate was seen at some endpoint and 3 when it never was. Both exit 64 on
a bad option or database URL, and 74 when the database cannot be read.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from pathlib import Path
from typing import Annotated

import typer

from certvigil.analysis.model import CertificateFacts
from certvigil.certfiles import load_certificate_file
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    DatabaseOption,
    HostGlobOption,
    JsonDocumentOption,
    StoreConfigOption,
    TagOption,
)
from certvigil.cli.store_access import open_existing_store
from certvigil.config.units import parse_duration_s
from certvigil.errors import CertificateLoadError, UsageError
from certvigil.output.inventory import (
    render_changes_json,
    render_changes_table,
    render_deployments_json,
    render_deployments_table,
)
from certvigil.store.queries import normalise_fingerprint
from certvigil.store.records import DeploymentRecord

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def parse_since(text: str, *, now: datetime) -> datetime:
    """The start of the period: ``now`` less a duration (``"24h"``, ``"7d"``) or a UTC time.

    Raises:
        UsageError: Neither a duration nor an ISO 8601 date or time.
    """
    try:
        return now - timedelta(seconds=parse_duration_s(text))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f'--since "{text}": write a duration ("24h", "7d") or a UTC time '
            '("2026-11-20" or "2026-11-20T08:00:00Z")'
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@app.command("changes")
def changes_command(
    since: Annotated[
        str,
        typer.Option(
            "--since",
            metavar="WHEN",
            help='Period start: a duration back from now ("24h", "7d") or a UTC time.',
        ),
    ] = "24h",
    host: HostGlobOption = None,
    tag: TagOption = None,
    as_json: JsonDocumentOption = False,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Show what changed: certificates rotated, issuers changed, protocols downgraded,
    chains broken, names mismatched, endpoints failed, and their recoveries."""
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


def fingerprints_of(certificate: str) -> tuple[str, ...]:
    """The SHA-256 fingerprints a ``where`` argument stands for.

    Args:
        certificate: A SHA-256 fingerprint (hex, colons and spaces allowed) or a
            certificate file (PEM, DER or PKCS#7; every certificate in it).

    Raises:
        UsageError: Neither an existing file nor a 64-digit hex fingerprint, or a file
            that holds no usable certificate.
    """
    path = Path(certificate)
    if path.is_file():
        try:
            return tuple(sha256(der).hexdigest() for der in load_certificate_file(path))
        except CertificateLoadError as exc:
            raise UsageError(str(exc)) from exc
    text = normalise_fingerprint(certificate)
    if not _SHA256_HEX.fullmatch(text):
        raise UsageError(
            f'"{certificate}": not a certificate file nor a SHA-256 fingerprint (64 hex digits)'
        )
    return (text,)


@app.command("where")
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
        bool, typer.Option("--current", help="Only endpoints that serve it now.")
    ] = False,
    as_json: JsonDocumentOption = False,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
) -> None:
    """Show where certificates are served, and where they were: every endpoint, with when
    it was first and last seen there."""
    fingerprints = [f for c in certificates for f in fingerprints_of(c)]
    found: list[tuple[str, CertificateFacts | None, tuple[DeploymentRecord, ...]]] = []
    with open_existing_store(db, config) as store:
        for fingerprint in dict.fromkeys(fingerprints):
            deployments = store.certificate_deployments(fingerprint, current_only=current)
            found.append((fingerprint, store.get_certificate(fingerprint), deployments))
    if as_json:
        render_deployments_json(found, sys.stdout)
    else:
        render_deployments_table(found, sys.stdout)
    seen = all(deployments for _f, _facts, deployments in found)
    raise typer.Exit(ExitCode.OK if seen else ExitCode.UNKNOWN)
