"""``certvigil run``: the monitoring daemon (or one cycle of it with ``--once``)."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.store_access import check_database_location, describe_database
from certvigil.config.discovery import require_config
from certvigil.config.expand import ScheduledTarget, check_trust_files, expand_targets
from certvigil.config.loading import LoadedConfig, load_config
from certvigil.config.model import LogFormat, LogLevel
from certvigil.daemon.logs import LOGGER_NAME, configure_logging
from certvigil.daemon.runner import Daemon
from certvigil.daemon.schedule import Schedule
from certvigil.errors import CertvigilError
from certvigil.store import Store, open_store

log = logging.getLogger(f"{LOGGER_NAME}.daemon")


RUN_EXAMPLES = """[bold]Examples[/bold]
certvigil run -c /etc/certvigil/certvigil.yaml
certvigil run -c certvigil.yaml --once --log-format json
certvigil run -c certvigil.yaml --log-level debug
certvigil run -c certvigil.yaml --distributed"""


@app.command("run", epilog=RUN_EXAMPLES)
def run_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help="The configuration (.yaml, .toml, .json) \\[default: $CERTVIGIL_CONFIG, "
            "else ./certvigil.yaml, ~/.config/certvigil/, /etc/certvigil/].",
            show_default=False,
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Run one cycle, send its alerts, and exit (75 if a delivery still fails).",
        ),
    ] = False,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            metavar="FORMAT",
            help="text or json (default: the configuration's).",
        ),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option("--log-level", metavar="LEVEL", help="debug, info, warning or error."),
    ] = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Schedule only: send the scans to 'certvigil worker' processes through "
            "the configuration's broker (docs/scaling.md).",
        ),
    ] = False,
) -> None:
    """Scan on schedule, record everything, and send each alert once.

    SIGTERM or SIGINT stops it cleanly, and it exits 0.

    No new endpoint is then started; those in flight are recorded if they finish
    within the configuration's scan.shutdown_grace.

    With --once it exits 75 when an alert notification is still failing at exit.

    A second daemon on the same database is refused: the first holds its lock.

    SIGHUP reloads the configuration; one with mistakes is logged and the old kept.
    """
    path = require_config(config)
    setup = _prepare(path)
    daemon_class: type[Daemon] = Daemon
    if distributed:
        from certvigil.distributed.scheduler import DistributedDaemon, distributed_settings

        distributed_settings(setup.loaded)  # a missing broker or SQLite: say so now
        daemon_class = DistributedDaemon
    logging_options = _LoggingOptions(format=log_format, level=log_level)
    logging_options.apply(setup.loaded)
    setup.log_notes()
    # A database in a directory that does not exist is a mistake in the file (64); a
    # database that cannot be opened or read raises StoreError (74).
    database_problem = check_database_location(setup.loaded)
    if database_problem is not None:
        raise database_problem
    store = open_store(setup.loaded.database_url)
    log.info(
        "certvigil starting",
        extra={"config": str(setup.loaded.path), "database": describe_database(store)},
    )
    service = _Service(path, setup, store, logging_options, daemon_class=daemon_class)
    try:
        asyncio.run(service.serve(once=once))
    finally:
        service.store.close()
    if once and service.daemon is not None and service.daemon.failing_deliveries:
        raise typer.Exit(ExitCode.DELIVERY_FAILING)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Setup:
    """A validated configuration and its expanded endpoints."""

    loaded: LoadedConfig
    targets: tuple[ScheduledTarget, ...]
    notes: tuple[str, ...]

    def log_notes(self) -> None:
        for note in self.notes:
            log.info(note)


def _prepare(path: Path) -> _Setup:
    """Read, validate and expand ``path``.

    Raises:
        ConfigError: A mistake in the file, a target source or a trust file.
    """
    loaded = load_config(path)
    expanded = expand_targets(loaded)
    unusable = check_trust_files(loaded)
    if unusable:
        raise unusable[0]
    return _Setup(
        loaded=loaded,
        targets=tuple(expanded.targets),
        notes=(*loaded.notes, *expanded.notes),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _LoggingOptions:
    """The command line's logging choices, which win over the configuration's."""

    format: LogFormat | None
    level: LogLevel | None

    def apply(self, loaded: LoadedConfig) -> None:
        settings = loaded.config.logging
        configure_logging(
            format=(self.format or settings.format).value,
            level=(self.level or settings.level).value,
            file=loaded.resolve(settings.file) if settings.file is not None else None,
        )


class _Service:
    """Runs daemons one after another: a reload replaces the daemon, a stop ends the run."""

    def __init__(
        self,
        path: Path,
        setup: _Setup,
        store: Store,
        logging_options: _LoggingOptions,
        *,
        daemon_class: type[Daemon] = Daemon,
    ) -> None:
        self.daemon_class = daemon_class
        self.path = path
        self.setup = setup
        self.store = store
        self.logging_options = logging_options
        self.daemon: Daemon | None = None
        self._pending: tuple[_Setup, Store | None] | None = None
        self._exiting = False
        self._reloading: asyncio.Task[None] | None = None

    async def serve(self, *, once: bool) -> None:
        loop = asyncio.get_running_loop()
        handlers = {signal.SIGTERM: self._on_stop, signal.SIGINT: self._on_stop}
        if not once:
            handlers[signal.SIGHUP] = self._on_reload
        for signum, handler in handlers.items():
            loop.add_signal_handler(signum, handler)
        previous: Schedule | None = None
        replaced: Daemon | None = None
        try:
            while True:
                self.daemon = self.daemon_class(
                    self.setup.loaded,
                    self.setup.targets,
                    store=self.store,
                    previous_schedule=previous,
                )
                if replaced is not None:
                    self.daemon.take_over(replaced)
                await self.daemon.run(once=once)
                pending, self._pending = self._pending, None
                if pending is None or self._exiting:
                    if pending is not None and pending[1] is not None:
                        pending[1].close()
                    return
                previous = self.daemon.schedule
                replaced = self.daemon
                self._switch_to(pending)
        finally:
            for signum in handlers:
                loop.remove_signal_handler(signum)
            if self._reloading is not None:
                self._reloading.cancel()

    def _on_stop(self) -> None:
        if self._exiting or self.daemon is None or not self.daemon.is_stopping:
            self._exiting = True
            if self.daemon is not None:
                self.daemon.request_stop()
            return
        # The daemon is already finishing its endpoints for a reload: this stop makes
        # that the end, still gracefully; a second stop request cancels them.
        self._exiting = True
        log.info("stop requested: finishing endpoints in flight")

    def _on_reload(self) -> None:
        if self._exiting:
            return
        if self._reloading is not None and not self._reloading.done():
            log.info("reload already in progress")
            return
        self._reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        log.info("reload requested: reading the configuration", extra={"file": str(self.path)})
        store: Store | None = None
        try:
            setup = await asyncio.to_thread(_prepare, self.path)
            if setup.loaded.database_url != self.setup.loaded.database_url:
                store = await asyncio.to_thread(open_store, setup.loaded.database_url)
        except Exception as exc:  # noqa: BLE001 - a reload must never take the daemon down
            error = str(exc) if isinstance(exc, CertvigilError) else f"{type(exc).__name__}: {exc}"
            log.error("configuration not reloaded; the running one is kept", extra={"error": error})
            return
        if self._exiting or self.daemon is None:
            if store is not None:
                store.close()
            return
        waiting = self._pending
        self._pending = (setup, store)
        if waiting is not None:
            # An earlier reload is still waiting for the daemon to finish its endpoints:
            # this newer file replaces it, and the daemon is not asked to stop twice
            # (which would cancel what is in flight).
            if waiting[1] is not None:
                waiting[1].close()
            return
        self.daemon.request_stop(reason="reload requested")

    def _switch_to(self, pending: tuple[_Setup, Store | None]) -> None:
        setup, store = pending
        self.setup = setup
        self.logging_options.apply(setup.loaded)
        setup.log_notes()
        if store is not None:
            self.store.close()
            self.store = store
        log.info("configuration reloaded", extra={"endpoints": len(setup.targets)})
