"""``certvigil config init`` and ``certvigil config check``: write and validate configurations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.store_access import check_database_location, database_summary
from certvigil.config.discovery import require_config
from certvigil.config.expand import check_trust_files, expand_targets
from certvigil.config.loading import load_config
from certvigil.config.sample import SAMPLE_YAML
from certvigil.errors import ConfigError
from certvigil.output.safe_text import visible

config_app = typer.Typer(
    name="config",
    help="Write a sample configuration, or check one.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")


INIT_EXAMPLES = """[bold]Examples[/bold]
certvigil config init certvigil.yaml
certvigil config init - > /etc/certvigil/certvigil.yaml"""


@config_app.command("init", epilog=INIT_EXAMPLES)
def init_command(
    path: Annotated[
        str,
        typer.Argument(metavar="PATH", help="File to write (.yaml); - writes to standard output."),
    ] = "-",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented sample configuration that passes config check."""
    if path == "-":
        sys.stdout.write(SAMPLE_YAML)
        return
    target = Path(path)
    if target.exists() and not force:
        sys.stderr.write(f"error: {target}: exists; pass --force to overwrite\n")
        raise typer.Exit(ExitCode.USAGE)
    try:
        target.write_text(SAMPLE_YAML, encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"error: {target}: cannot write: {exc.strerror or exc}\n")
        raise typer.Exit(ExitCode.USAGE) from exc
    sys.stderr.write(f"wrote {target}; check it with: certvigil config check {target}\n")


CHECK_EXAMPLES = """[bold]Examples[/bold]
certvigil config check certvigil.yaml
certvigil config check /etc/certvigil/certvigil.yaml && systemctl reload certvigil"""


@config_app.command("check", epilog=CHECK_EXAMPLES)
def check_command(
    path: Annotated[
        Path | None,
        typer.Argument(
            metavar="PATH",
            help="The configuration (.yaml, .toml or .json) \\[default: $CERTVIGIL_CONFIG, "
            "else ./certvigil.yaml, ~/.config/certvigil/, /etc/certvigil/].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate a configuration and its sources; list every mistake with field and line.

    Exits 0 with a summary of what would be scanned, or 64 when anything is wrong.
    """
    path = require_config(path)
    try:
        loaded = load_config(path)
        expanded = expand_targets(loaded)
        unusable = list(check_trust_files(loaded))
        database_problem = check_database_location(loaded)
        if database_problem is not None:
            unusable.insert(0, database_problem)
        if unusable:
            raise ConfigError(str(path), "unusable files", problems=tuple(unusable))
    except ConfigError as exc:
        problems = exc.problems or (exc,)
        for problem in problems:
            sys.stderr.write(f"error: {visible(str(problem))}\n")
        count = len(problems)
        sys.stderr.write(f"{visible(str(path))}: {count} mistake{'s' if count != 1 else ''}\n")
        raise typer.Exit(ExitCode.USAGE) from None
    for note in (*loaded.notes, *expanded.notes):
        sys.stderr.write(f"note: {visible(str(note))}\n")
    config = loaded.config
    targets = expanded.targets
    hosts = {s.target.host for s in targets}
    out = sys.stdout
    out.write(f"{visible(str(path))}: valid ({loaded.format})\n")
    out.write(
        f"  endpoints: {len(targets)} on {len(hosts)} hosts, from {len(config.targets)} "
        f"targets and {len(config.sources)} sources\n"
    )
    out.write(f"  database: {visible(database_summary(loaded.database_url))}\n")
    out.write(
        f"  scan: every {format_duration(config.scan.interval_s)}"
        f" (+ up to {format_duration(config.scan.jitter_s)} jitter),"
        f" time-out {format_duration(config.scan.timeout_s)},"
        f" {config.scan.concurrency} at a time\n"
    )
    thresholds = " ".join(t.label for t in config.alerts.thresholds)
    out.write(f"  alerts: thresholds {thresholds}; {len(config.alerts.routes)} routes\n")
    for scheduled in targets[:10]:
        out.write(f"    {visible(str(scheduled.target))}\n")
    if len(targets) > 10:
        out.write(f"    … and {len(targets) - 10} more\n")


def format_duration(seconds: float) -> str:
    """``5400`` as ``1h30m``; ``0`` as ``0s``."""
    if seconds <= 0:
        return "0s"
    whole = round(seconds)
    if whole != seconds or whole < 60:
        return f"{seconds:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
