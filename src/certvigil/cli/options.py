"""Command-line options shared by several commands, declared once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from certvigil.errors import UsageError
from certvigil.targets.target import StartTLS
from certvigil.text_escape import visible

TARGETS_PANEL = "Targets"
"""Help panel: what to scan (names, files, ports, SNI, STARTTLS)."""
CONNECTION_PANEL = "Connection"
"""Help panel: how many connections, how long to wait, how often to retry."""
CHECKS_PANEL = "Checks"
"""Help panel: what to judge (thresholds, revocation, deep checks)."""
TRUST_PANEL = "Trust"
"""Help panel: which CA certificates are trust anchors."""
OUTPUT_PANEL = "Output"
"""Help panel: format and destination of results, progress."""
FILTERS_PANEL = "Filters"
"""Help panel: which stored endpoints or certificates to show."""
DATABASE_PANEL = "Database"
"""Help panel: which inventory to read."""

# --- what the target is (scan, grade) ---------------------------------------------

PortsOption = Annotated[
    str | None,
    typer.Option(
        "-p",
        "--ports",
        metavar="PORTS",
        help="Ports for targets without one, e.g. 443,8443,9000-9010 \\[default: 443].",
        show_default=False,
        rich_help_panel=TARGETS_PANEL,
    ),
]
"""``-p PORTS``: the ports of a target written without one."""

SniOption = Annotated[
    str | None,
    typer.Option(
        "--sni",
        metavar="NAME",
        help="Send NAME as SNI and match certificates against it.",
        rich_help_panel=TARGETS_PANEL,
    ),
]
"""``--sni NAME``: the server name sent and judged against."""

StartTlsOption = Annotated[
    StartTLS | None,
    typer.Option(
        "--starttls",
        metavar="PROTO",
        help="Upgrade with PROTO first: smtp, imap, pop3, ftp, ldap, xmpp or postgres "
        "\\[default: by port: 25/587 smtp, 143 imap, 110 pop3, 21 ftp, 389 ldap, "
        "5222 xmpp, 5432 postgres].",
        show_default=False,
        rich_help_panel=TARGETS_PANEL,
    ),
]
"""``--starttls PROTOCOL``: the in-band upgrade (default by port)."""

PerIpOption = Annotated[
    int,
    typer.Option(
        "--per-ip",
        metavar="N",
        min=1,
        help="Most connections open to one address.",
        rich_help_panel=CONNECTION_PANEL,
    ),
]
"""``--per-ip N``: connections open at once to one address."""

RetriesOption = Annotated[
    int,
    typer.Option(
        "--retries",
        metavar="N",
        min=0,
        help="Retries after a reset (and a time-out with --retry-timeouts).",
        rich_help_panel=CONNECTION_PANEL,
    ),
]
"""``--retries N``: further attempts after a transient failure."""

CaFilesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--ca-file",
        metavar="PEM",
        help="Also trust the CA certificates in this file (PEM, DER, PKCS#7). Repeatable.",
        show_default=False,
        rich_help_panel=TRUST_PANEL,
    ),
]
"""``--ca-file``: extra trust anchors, added to the default ones."""

SystemTrustOption = Annotated[
    bool,
    typer.Option(
        "--system-trust",
        help="Also trust the operating system's CA bundle.",
        rich_help_panel=TRUST_PANEL,
    ),
]
"""``--system-trust``: add the operating system's bundle to the anchors."""

DefaultCaOption = Annotated[
    bool,
    typer.Option(
        "--default-ca/--no-default-ca",
        help="Trust Mozilla's roots (certifi); --no-default-ca trusts only --ca-file.",
        rich_help_panel=TRUST_PANEL,
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
        rich_help_panel=CHECKS_PANEL,
    ),
]
"""``--threshold DAYS``: expiry thresholds, repeatable."""

DebugOption = Annotated[bool, typer.Option("--debug", help="Tracebacks for errors.")]
"""``--debug``: declared on each command so it may follow it; ``app.main`` reads it."""

ConnectTimeoutOption = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        metavar="S",
        help="TCP connect limit, seconds.",
        rich_help_panel=CONNECTION_PANEL,
    ),
]
"""``--connect-timeout S``: the TCP connect limit."""

HandshakeTimeoutOption = Annotated[
    float,
    typer.Option(
        "--handshake-timeout",
        metavar="S",
        help="TLS handshake limit, seconds.",
        rich_help_panel=CONNECTION_PANEL,
    ),
]
"""``--handshake-timeout S``: the TLS handshake limit."""

DeadlineOption = Annotated[
    float,
    typer.Option(
        "--deadline",
        metavar="S",
        help="Most seconds one endpoint may take from its first connection: connect, "
        "handshake, retries, revocation and deep probes.",
        rich_help_panel=CONNECTION_PANEL,
    ),
]
"""``--deadline S``: one endpoint's total time (``ScanOptions.deadline_s``)."""

RetryTimeoutsOption = Annotated[
    bool,
    typer.Option(
        "--retry-timeouts",
        help="Also retry an endpoint that timed out (it used the whole time-out once).",
        rich_help_panel=CONNECTION_PANEL,
    ),
]
"""``--retry-timeouts``: retry time-outs as well as resets (``ScanOptions.retry_timeouts``)."""

ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Progress bar on stderr \\[default: when stderr is a terminal].",
        show_default=False,
        rich_help_panel=OUTPUT_PANEL,
    ),
]
"""``--progress/--no-progress``: ``None`` draws the bar when stderr is a terminal."""

OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        metavar="FILE",
        help="Write results to FILE.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
"""``--output FILE``: results to a file instead of stdout."""

DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Database URL or SQLite file (default: the configuration's database_url, "
        "else $CERTVIGIL_DATABASE_URL, else the default path; see docs/store.md).",
        rich_help_panel=DATABASE_PANEL,
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
        rich_help_panel=DATABASE_PANEL,
    ),
]
"""``--config``: the configuration whose ``database_url`` names the inventory."""

HostGlobOption = Annotated[
    str | None,
    typer.Option(
        "--host",
        metavar="GLOB",
        help="Only hosts matching GLOB (internal*).",
        rich_help_panel=FILTERS_PANEL,
    ),
]
"""``--host``: a glob over the endpoints' host names (store commands)."""

TagOption = Annotated[
    str | None,
    typer.Option(
        "--tag", metavar="TAG", help="Only endpoints tagged TAG.", rich_help_panel=FILTERS_PANEL
    ),
]
"""``--tag``: only endpoints carrying this label (store commands)."""

JsonDocumentOption = Annotated[
    bool,
    typer.Option("--json", help="One JSON document on stdout.", rich_help_panel=OUTPUT_PANEL),
]
"""``--json``: one JSON document on stdout instead of the table."""


def parse_since(text: str, *, now: datetime) -> datetime:
    """The start of the period: ``now`` less a duration (``"24h"``, ``"7d"``) or a UTC time.

    Raises:
        UsageError: Neither a duration nor an ISO 8601 date or time.
    """
    from certvigil.config.units import parse_duration_s  # pydantic: only when asked

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


def parse_listen(text: str, *, example: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` as (host, port).

    Raises:
        UsageError: Not in that form, or the port is out of range.
    """
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit():
        raise UsageError(f'--listen "{visible(text[:100])}": use HOST:PORT, e.g. {example}')
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise UsageError(f'--listen "{visible(text[:100])}": port must be 0-65535')
    return host, port
