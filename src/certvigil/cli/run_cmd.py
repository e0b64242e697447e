"""``certvigil run``: the monitoring daemon (or one cycle of it with ``--once``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from certvigil.cli.app import app
from certvigil.config.expand import check_trust_files, expand_targets
from certvigil.config.loading import load_config
from certvigil.config.model import LogFormat, LogLevel
from certvigil.daemon.logs import LOGGER_NAME, configure_logging
from certvigil.daemon.runner import Daemon
from certvigil.store import open_store

log = logging.getLogger(f"{LOGGER_NAME}.daemon")


@app.command("run")
def run_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="The configuration (.yaml, .toml, .json).")
    ],
    once: Annotated[
        bool, typer.Option("--once", help="Run one cycle, send its alerts, and exit.")
    ] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--log-format", help="text or json (default: the configuration's)."),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", help="debug, info, warning or error."),
    ] = None,
) -> None:
    """Scan on schedule, record everything, and send each alert once.

    SIGTERM or SIGINT stops the daemon cleanly: no new endpoint is started, those in
    flight get ``scan.shutdown_grace`` to finish and be recorded, and it exits 0.
    """
    loaded = load_config(config)
    expanded = expand_targets(loaded)
    unusable = check_trust_files(loaded)
    if unusable:
        raise unusable[0]
    settings = loaded.config.logging
    configure_logging(
        format=(log_format or settings.format).value,
        level=(log_level or settings.level).value,
        file=loaded.resolve(settings.file) if settings.file is not None else None,
    )
    for note in (*loaded.notes, *expanded.notes):
        log.info(note)
    store = open_store(loaded.database_url)
    try:
        daemon = Daemon(loaded, expanded.targets, store=store)
        asyncio.run(_serve(daemon, once=once))
    finally:
        store.close()


async def _serve(daemon: Daemon, *, once: bool) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.request_stop)
    try:
        await daemon.run(once=once)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
