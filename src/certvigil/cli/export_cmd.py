"""``certvigil export ecs``: observations and certificates as ``_bulk`` NDJSON for Elasticsearch.

Exit codes: 0 written (even when nothing was observed in the period), 64 for a bad
option, configuration or scan file, 74 when the database cannot be read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import TextIO

import typer

from certvigil.cli.app import app
from certvigil.cli.options import DatabaseOption, DebugOption, OutputOption, StoreConfigOption
from certvigil.cli.snapshot_source import (
    FromScanOption,
    IndexPrefixOption,
    SinceOption,
    ecs_documents,
    index_prefix,
    snapshot_source,
    write_output,
)
from certvigil.integrations.ecs import DEFAULT_INDEX_PREFIX, bulk_lines

export_app = typer.Typer(
    name="export",
    help="Write the inventory in another system's format.",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


def _write(lines: Iterator[str], stream: TextIO) -> int:
    count = 0
    for line in lines:
        stream.write(line)
        count += 1
    return count // 2


EXPORT_ECS_EXAMPLES = """[bold]Examples[/bold]
certvigil export ecs -c /etc/certvigil/certvigil.yaml --since 24h -o day.ndjson
certvigil export ecs --since 2026-11-01T00:00:00Z > november.ndjson
certvigil export ecs --from-scan scan.json --index tls"""


@export_app.command("ecs", epilog=EXPORT_ECS_EXAMPLES)
def export_ecs_command(
    since: SinceOption = "24h",
    output: OutputOption = None,
    index: IndexPrefixOption = DEFAULT_INDEX_PREFIX,
    from_scan: FromScanOption = None,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Write observations and certificates as Elasticsearch _bulk NDJSON (ECS fields).

    Every document has a stable id: loading a period twice overwrites it.
    """
    del debug  # read from argv by certvigil.cli.app.main
    prefix = index_prefix(index)
    snapshots, store = snapshot_source(from_scan=from_scan, db=db, config=config, since=since)
    try:
        lines = bulk_lines(ecs_documents(snapshots), prefix=prefix)
        count = write_output(output, lambda stream: _write(lines, stream), encoding="ascii")
    finally:
        if store is not None:
            store.close()
    if count is None:
        return
    where = f" to {output}" if output is not None else ""
    sys.stderr.write(f"{count} document{'s' if count != 1 else ''} written{where}\n")
