"""Where ``export``, ``ship`` and ``report`` read from: the store's observations or a scan file.

Shared by those commands (a module of its own, so each command imports only what it
uses); the options they share are declared here too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TextIO, TypeVar

import typer

from certvigil.cli.options import (
    FILTERS_PANEL,
    OUTPUT_PANEL,
    parse_since,
)
from certvigil.cli.store_access import open_existing_store
from certvigil.errors import UsageError
from certvigil.integrations.ecs import (
    CertificateCollector,
    Document,
    check_index_prefix,
    observation_document,
)
from certvigil.integrations.snapshot import (
    EndpointSnapshot,
    snapshot_from_record,
    snapshots_from_scan_document,
)
from certvigil.store import Store
from certvigil.store.exports import certificate_facts, endpoint_tags, observations_page

MAX_SCAN_FILE_BYTES = 512 * 1024 * 1024
"""Largest scan document read (``--from-scan``): about a million endpoints."""

_PAGE = 1000

SinceOption = Annotated[
    str,
    typer.Option(
        "--since",
        metavar="WHEN",
        help='Observations from this duration ago ("24h", "7d") or UTC time '
        '("2026-11-20T08:00:00Z").',
        rich_help_panel=FILTERS_PANEL,
    ),
]
"""``--since``: the start of the exported period."""

IndexPrefixOption = Annotated[
    str,
    typer.Option(
        "--index",
        metavar="PREFIX",
        help="Index prefix: PREFIX-observations-YYYY.MM, PREFIX-certificates-YYYY.MM.",
        rich_help_panel=OUTPUT_PANEL,
    ),
]
"""``--index``: the prefix of the monthly indices."""

FromScanOption = Annotated[
    Path | None,
    typer.Option(
        "--from-scan",
        metavar="FILE",
        help="Read a `certvigil scan --json` document instead of the database.",
        rich_help_panel=FILTERS_PANEL,
    ),
]
"""``--from-scan FILE``: snapshots from a scan document rather than the store."""


def index_prefix(text: str) -> str:
    """``--index`` checked against Elasticsearch's rules for index names.

    Raises:
        UsageError: Elasticsearch would refuse the name.
    """
    try:
        return check_index_prefix(text)
    except ValueError as exc:
        raise UsageError(f'--index "{text}": {exc}') from None


def read_scan_document(path: Path) -> tuple[EndpointSnapshot, ...]:
    """The snapshots of a scan document file (``-`` for stdin).

    Raises:
        UsageError: Unreadable, too large, not JSON or not a scan document; the
            message names the file and the field.
    """
    try:
        if str(path) == "-":
            raw = sys.stdin.buffer.read(MAX_SCAN_FILE_BYTES + 1)
        else:
            with path.open("rb") as stream:
                raw = stream.read(MAX_SCAN_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SCAN_FILE_BYTES:
        raise UsageError(f"{path}: larger than {MAX_SCAN_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise UsageError(f"{path}: not JSON: {exc}") from None
    try:
        return snapshots_from_scan_document(document)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None


def store_snapshots(store: Store, *, since_utc: datetime) -> Iterator[EndpointSnapshot]:
    """Every observation made since ``since_utc``, oldest id first, a page at a time."""
    after_id = 0
    while True:
        with store.read() as connection:
            page = observations_page(
                connection, since_utc=since_utc, after_id=after_id, limit=_PAGE
            )
            if not page:
                return
            facts = certificate_facts(connection, {r.leaf_sha256 for r in page if r.leaf_sha256})
            tags = endpoint_tags(connection, {r.endpoint_id for r in page})
        for record in page:
            leaf = facts.get(record.leaf_sha256) if record.leaf_sha256 else None
            yield snapshot_from_record(record, leaf, tags=tags.get(record.endpoint_id, ()))
        after_id = page[-1].id


def ecs_documents(snapshots: Iterator[EndpointSnapshot]) -> Iterator[Document]:
    """Observation documents as the snapshots come, then one per distinct certificate."""
    certificates = CertificateCollector()
    for snapshot in snapshots:
        certificates.add(snapshot)
        yield observation_document(snapshot)
    yield from certificates.documents()


def snapshot_source(
    *, from_scan: Path | None, db: str | None, config: Path | None, since: str
) -> tuple[Iterator[EndpointSnapshot], Store | None]:
    """The snapshots a command reads: a scan document, or the store's observations since.

    Returns:
        The snapshots and the store to close afterwards (``None`` for a scan file).
    """
    if from_scan is not None:
        return iter(read_scan_document(from_scan)), None
    since_utc = parse_since(since, now=datetime.now(UTC))
    store = open_existing_store(db, config)
    return store_snapshots(store, since_utc=since_utc), store


_T = TypeVar("_T")


def write_output(output: Path | None, write: Callable[[TextIO], _T], *, encoding: str) -> _T | None:
    """Run ``write`` on ``output`` (opened late, so nothing is created on an earlier error)
    or on stdout.

    A reader that closes stdout early (``| head``) ends the writing quietly: returns
    ``None``.

    Raises:
        UsageError: The file or stdout cannot be written (the reason named).
    """
    if output is None:
        try:
            result = write(sys.stdout)
            sys.stdout.flush()
        except BrokenPipeError:
            _silence_stdout()
            return None
        except OSError as exc:
            _silence_stdout()
            raise UsageError(f"stdout: cannot write: {exc.strerror or exc}") from None
        return result
    try:
        with output.open("w", encoding=encoding, newline="") as stream:
            return write(stream)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write: {exc.strerror or exc}") from None


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the final flush of a closed pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout has no descriptor of its own (captured output)
    finally:
        os.close(devnull)
