"""``certvigil worker`` (a Celery worker that scans shards) and ``certvigil workers status``."""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from certvigil.cli.app import app
from certvigil.cli.options import JsonDocumentOption
from certvigil.config.discovery import require_config
from certvigil.config.expand import check_trust_files, expand_targets
from certvigil.config.loading import load_config
from certvigil.daemon.logs import configure_logging
from certvigil.output.safe_text import visible
from certvigil.store import distributed as shards_db
from certvigil.store import open_store

CONFIG_HELP = (
    "The configuration, with 'distributed:' and a PostgreSQL database_url "
    "\\[default: $CERTVIGIL_CONFIG, else ./certvigil.yaml, ~/.config/certvigil/, "
    "/etc/certvigil/]."
)

WORKER_EXAMPLES = """[bold]Examples[/bold]
certvigil worker -c /etc/certvigil/certvigil.yaml
certvigil worker -c certvigil.yaml --name scanner-2"""


@app.command("worker", epilog=WORKER_EXAMPLES)
def worker_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", metavar="PATH", help=CONFIG_HELP, show_default=False),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", metavar="NAME", help="This worker's name (default: host.pid)."),
    ] = None,
) -> None:
    """Run a worker: take shards from the broker, scan them, record each endpoint once.

    Start as many as needed, on machines that reach the broker and the database.

    'certvigil run --distributed' schedules the shards.

    SIGTERM finishes the shard in hand, then stops.

    A worker killed mid-shard leaves the shard to another (docs/scaling.md).
    """
    from certvigil.distributed.celery_app import TASK_NAME, make_app
    from certvigil.distributed.scheduler import distributed_settings
    from certvigil.distributed.worker import ShardRunner

    loaded = load_config(require_config(config))
    settings = distributed_settings(loaded)
    unusable = check_trust_files(loaded)
    if unusable:
        raise unusable[0]
    targets = expand_targets(loaded).targets
    logs = loaded.config.logging
    configure_logging(format=logs.format.value, level=logs.level.value, file=logs.file)
    store = open_store(loaded.database_url)
    worker_name = name or f"{socket.gethostname()}.{os.getpid()}"
    runner = ShardRunner(loaded, targets, store=store, settings=settings, name=worker_name)
    celery = make_app(settings)
    from celery.exceptions import Reject

    from certvigil.distributed.shards import with_handed_back
    from certvigil.distributed.worker import StoreUnavailable

    def scan_shard(payload: object) -> None:
        try:
            runner.run(payload)
        except StoreUnavailable as exc:
            if exc.attempt is not None and exc.careful_index is not None:
                # Send it again with a note that the item in flight did not end this
                # worker, then let this delivery be acknowledged (a crash between the
                # two leaves a duplicate, which skips what is recorded).
                note = with_handed_back(
                    cast(dict[str, Any], payload), attempt=exc.attempt, index=exc.careful_index
                )
                try:
                    celery.send_task(TASK_NAME, args=[note], queue=settings.queue)
                except Exception:  # noqa: BLE001 - kombu raises many kinds; requeue instead
                    raise Reject(str(exc), requeue=True) from exc
                return
            raise Reject(str(exc), requeue=True) from exc

    celery.task(name=TASK_NAME, acks_late=True, ignore_result=True)(scan_shard)
    runner.start_heartbeat()
    try:
        worker = celery.Worker(
            pool="solo",
            concurrency=1,
            queues=[settings.queue],
            hostname=f"{worker_name}@certvigil",
            loglevel=os.environ.get("CERTVIGIL_CELERY_LOGLEVEL", "WARNING"),
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            optimization="fair",
        )
        worker.start()
    finally:
        runner.close()
        store.close()
    raise typer.Exit(worker.exitcode or 0)


workers_app = typer.Typer(
    name="workers",
    help="See the distributed scan's workers: progress, throughput, last heartbeat.",
    no_args_is_help=True,
)
app.add_typer(workers_app, name="workers")

STATUS_EXAMPLES = """[bold]Examples[/bold]
certvigil workers status -c certvigil.yaml
certvigil workers status -c certvigil.yaml --json"""

SILENT_AFTER_S = 30.0
"""A worker whose last heartbeat is older than this is shown as silent."""


@workers_app.command("status", epilog=STATUS_EXAMPLES)
def status_command(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", metavar="PATH", help=CONFIG_HELP, show_default=False),
    ] = None,
    as_json: JsonDocumentOption = False,
) -> None:
    """List the workers: shard in hand, shards and endpoints done, endpoints/s, CPU.

    'db waits' counts the times a worker found the database refusing writes and
    waited for it, keeping its shard.

    Exit code: 1 if a worker that was running has gone silent, else 0.
    """
    loaded = load_config(require_config(config))
    with open_store(loaded.database_url, migrate=False) as store, store.read() as connection:
        rows = shards_db.workers(connection)
    now = datetime.now(UTC)
    silent = [r for r in rows if (now - r.heartbeat_at_utc).total_seconds() > SILENT_AFTER_S]
    if as_json:
        document = {"workers": [_row_json(r, now) for r in rows]}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(1 if silent else 0)
    if not rows:
        Console(stderr=True).print("no worker has reported to this database yet", markup=False)
        raise typer.Exit(0)
    table = Table(box=None, pad_edge=False)
    columns = ("worker", "state", "shard", "shards", "endpoints", "per s", "cpu s", "db waits")
    for column in columns:
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(
            visible(r.name),
            _state(r, now),
            visible(r.current_shard[:8]) if r.current_shard else "-",
            str(r.shards_done),
            str(r.endpoints_done),
            f"{r.endpoints_per_s:.1f}",
            f"{r.cpu_s:.1f}",
            f"{r.store_waits} ({r.store_waited_s:.0f}s)" if r.store_waits else "0",
        )
    Console(highlight=False).print(table)
    raise typer.Exit(1 if silent else 0)


def _state(row: shards_db.WorkerRow, now: datetime) -> str:
    age = (now - row.heartbeat_at_utc).total_seconds()
    if age > SILENT_AFTER_S:
        return f"silent {int(age)}s"
    return "scanning" if row.current_shard else "idle"


def _row_json(row: shards_db.WorkerRow, now: datetime) -> dict[str, Any]:
    return {
        "name": row.name,
        "hostname": row.hostname,
        "pid": row.pid,
        "version": row.version,
        "started_at": row.started_at_utc.isoformat(),
        "heartbeat_at": row.heartbeat_at_utc.isoformat(),
        "heartbeat_age_s": round((now - row.heartbeat_at_utc).total_seconds(), 1),
        "current_shard": row.current_shard,
        "shards_done": row.shards_done,
        "endpoints_done": row.endpoints_done,
        "endpoints_per_s": round(row.endpoints_per_s, 3),
        "cpu_s": round(row.cpu_s, 3),
        "store_waits": row.store_waits,
        "store_waited_s": round(row.store_waited_s, 1),
    }
