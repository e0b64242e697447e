"""``certvigil rejudge``: judge the stored observations again, with no scan.

Exit codes: the worst verdict after re-judging (2 critical, 1 warning, 0 none), or 3
when some stored observation could not be read and nothing is critical; 64 for a
mistake in the configuration or options, 74 when the database cannot be read.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from certvigil.analysis.model import Severity, worst
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import DatabaseOption, DebugOption, JsonDocumentOption
from certvigil.cli.store_access import open_existing_store
from certvigil.config.discovery import require_config
from certvigil.config.expand import check_trust_files, expand_targets
from certvigil.config.loading import load_config
from certvigil.config.model import TrustSettings
from certvigil.daemon.rejudge import Rejudged, rejudge_store
from certvigil.output.safe_text import markup

REJUDGE_EXAMPLES = """[bold]Examples[/bold]
certvigil rejudge -c /etc/certvigil/certvigil.yaml
certvigil rejudge -c certvigil.yaml --dry-run
certvigil rejudge -c certvigil.yaml --json > rejudged.json"""


@app.command("rejudge", epilog=REJUDGE_EXAMPLES)
def rejudge_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="PATH",
            help="The configuration whose trust store and thresholds apply now "
            "\\[default: $CERTVIGIL_CONFIG, else ./certvigil.yaml, ~/.config/certvigil/, "
            "/etc/certvigil/].",
            show_default=False,
        ),
    ] = None,
    db: DatabaseOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show what would change; write nothing, raise no alert."),
    ] = False,
    as_json: JsonDocumentOption = False,
    debug: DebugOption = False,
) -> None:
    """Judge each endpoint's latest stored observation again, without a scan.

    Today's trust store and thresholds apply: add a CA file, and its endpoints turn trusted.

    The new judgement replaces the stored one; alerts open and resolve as after a scan.

    Observations recorded before certvigil kept them whole are skipped.
    """
    del debug  # read by the application's error handler
    path = require_config(config)
    loaded = load_config(path)
    unusable = check_trust_files(loaded)
    if unusable:
        raise unusable[0]
    targets = expand_targets(loaded).targets
    # Imported here: the daemon's modules pull in the alert channels.
    from certvigil.alerts.engine import AlertEngine
    from certvigil.alerts.routing import routes_from_config
    from certvigil.analysis.trust import TrustStore
    from certvigil.daemon.runner import expiry_thresholds
    from certvigil.files.truststore import load_trust_store

    trust_stores: dict[TrustSettings, TrustStore] = {}

    def trust_for(settings: TrustSettings) -> TrustStore:
        if settings not in trust_stores:
            trust_stores[settings] = load_trust_store(
                ca_files=settings.ca_files,
                use_system=settings.system,
                include_default=settings.public,
            )
        return trust_stores[settings]

    from certvigil.alerts.rules import AlertPolicy

    global_thresholds = expiry_thresholds(loaded.config.alerts.thresholds)
    alert_policy = AlertPolicy(
        thresholds=global_thresholds,
        target_thresholds={
            s.target: expiry_thresholds(s.thresholds)
            for s in targets
            if s.thresholds != loaded.config.alerts.thresholds
        },
    )
    default_trust = loaded.config.trust.model_copy(
        update={"ca_files": tuple(loaded.resolve(p) for p in loaded.config.trust.ca_files)}
    )
    store = open_existing_store(db, path if db is None else None)
    try:
        engine = (
            None
            if dry_run
            else AlertEngine(store, routes_from_config(loaded.config.alerts.routes), alert_policy)
        )
        results = rejudge_store(
            store,
            targets=targets,
            default_trust=default_trust,
            trust_for=trust_for,
            alert_policy=alert_policy,
            engine=engine,
            now=datetime.now(UTC),
        )
    finally:
        store.close()
    if as_json:
        json.dump({"dry_run": dry_run, "endpoints": [_json(r) for r in results]}, sys.stdout)
        sys.stdout.write("\n")
    else:
        _table(results)
    changed = sum(r.changed for r in results)
    events = sum(len(r.events) for r in results)
    Console(stderr=True, highlight=False).print(
        f"{len(results)} observations re-judged, {changed} changed"
        + ("" if dry_run else f", {events} alert events")
        + (" (dry run: nothing written)" if dry_run else ""),
        markup=False,
    )
    raise typer.Exit(_exit_code(results))


def _exit_code(results: list[Rejudged]) -> ExitCode:
    level = worst([Severity(r.verdict_after) for r in results if r.verdict_after is not None])
    if level is Severity.CRITICAL:
        return ExitCode.CRITICAL
    if any(r.problem is not None for r in results):
        return ExitCode.UNKNOWN
    if level is Severity.WARNING:
        return ExitCode.WARNING
    return ExitCode.OK


def _trust_text(value: bool | None) -> str:
    return {True: "trusted", False: "untrusted", None: "-"}[value]


def _json(result: Rejudged) -> dict[str, Any]:
    return {
        "endpoint": str(result.target),
        "observation_id": result.observation_id,
        "observed_at_utc": (
            result.observed_at_utc.isoformat() if result.observed_at_utc is not None else None
        ),
        "verdict_before": result.verdict_before,
        "verdict_after": result.verdict_after,
        "trusted_before": result.trusted_before,
        "trusted_after": result.trusted_after,
        "changed": result.changed,
        "problem": result.problem,
        "alert_events": [
            {"action": e.action.value, "kind": e.kind.value, "title": e.title}
            for e in result.events
        ],
    }


def _table(results: list[Rejudged]) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("ENDPOINT", "VERDICT", "CHAIN", "ALERTS"):
        table.add_column(column)
    for r in results:
        after = r.verdict_after if r.verdict_after is not None else f"unreadable: {r.problem}"
        verdict = (
            r.verdict_before if r.verdict_before == after else f"{r.verdict_before} -> {after}"
        )
        before_t, after_t = _trust_text(r.trusted_before), _trust_text(r.trusted_after)
        chain = before_t if before_t == after_t else f"{before_t} -> {after_t}"
        alerts = ", ".join(f"{e.action.value} {e.kind.value}" for e in r.events) or "-"
        table.add_row(*(markup(text) for text in (str(r.target), verdict, chain, alerts)))
    Console(highlight=False).print(table)
