"""``certvigil ct …``: the Certificate Transparency watch and what it found.

``watch`` reads the logs into the store and the alert engine; ``status`` says how
complete the watch is, log by log and overall; ``findings`` lists what was found;
``baseline`` and ``authorize-ca`` keep the CAs allowed per watched domain;
``update-log-list`` refreshes the log list kept for offline use. ``search``,
``check-rules`` and ``feed`` live in ``ct_names_cmd``.

Exit codes: ``watch`` exits 0, or 3 when a log could not be read to its tree head;
``status`` exits 1 when a log is behind, failing or never read, else 0; the others 0.
All exit 64 on a usage or configuration error and 74 when the database fails.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from certvigil.cli import ct_names_cmd
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    DatabaseOption,
    DebugOption,
    JsonDocumentOption,
    StoreConfigOption,
)
from certvigil.cli.store_access import open_existing_store
from certvigil.errors import ConfigError, UsageError
from certvigil.output.safe_text import markup, visible

ct_app = typer.Typer(
    name="ct",
    help="Certificate Transparency: watch the logs for your names and look-alikes.",
    no_args_is_help=True,
)
app.add_typer(ct_app, name="ct")
# search, check-rules and feed (crt.sh, look-alike and keyword rules, certstream).
ct_names_cmd.register(ct_app)

_stderr = Console(stderr=True, highlight=False, soft_wrap=True)

ConfigFileOption = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="The configuration with the ct: section (and the database).",
    ),
]


def _settings(config: Path | None) -> tuple[Any, Any]:
    """The loaded configuration and its ``ct:`` section (a usage error without one)."""
    from certvigil.config.discovery import require_config
    from certvigil.config.loading import load_config

    path = require_config(config)
    loaded = load_config(path)
    if loaded.config.ct is None:
        raise UsageError(f"{path}: no ct: section (the domains to watch and the logs to read)")
    return loaded, loaded.config.ct


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- watch --------------------------------------------------------------------------

WATCH_EXAMPLES = """[bold]Examples[/bold]
certvigil ct watch -c certvigil.yaml --once
certvigil ct watch -c certvigil.yaml --once --from-start
certvigil ct watch --config /etc/certvigil/certvigil.yaml"""


@ct_app.command("watch", epilog=WATCH_EXAMPLES)
def watch_command(
    config: ConfigFileOption,
    once: Annotated[
        bool, typer.Option("--once", help="Read each log up to its current tree head, then stop.")
    ] = False,
    from_start: Annotated[
        bool,
        typer.Option("--from-start", help="Read new logs from entry 0 instead of their end."),
    ] = False,
    db: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """Read the CT logs and alert on certificates for the watched domains.

    Each log resumes where the last run stopped; a new log starts at its end.

    Without --once it reads the logs again every ct.poll_interval.
    """
    del debug
    from certvigil.alerts.engine import AlertEngine
    from certvigil.alerts.routing import routes_from_config
    from certvigil.ct.watch.logs import watched_logs
    from certvigil.ct.watch.runner import CtWatch
    from certvigil.store import open_store

    loaded, settings = _settings(config)
    if not settings.domains:
        raise UsageError(f"{loaded.path}: ct.domains is empty: nothing to watch")
    plans = watched_logs(settings, loaded.base_dir, now=datetime.now(UTC))
    if not plans.tail:
        raise UsageError(f"{loaded.path}: no log to read (the list selects none, no ct.logs)")
    routes = routes_from_config(loaded.config.alerts.routes)
    store = open_store(db or loaded.database_url)
    with store:
        engine = AlertEngine(store, routes)
        watch = CtWatch(settings, store, engine, base_dir=loaded.base_dir, log_line=_progress)
        _progress(
            f"watching {len(settings.domains)} domain(s) in {len(plans.tail)} log(s)"
            + (f" (list {plans.list_version}, {plans.source})" if plans.source else "")
        )
        reports = asyncio.run(_watch(watch, plans.tail, routes, once=once, from_start=from_start))
    failed = 0
    for report in reports:
        state = report.state
        line = (
            f"{report.log}: {report.handled} entries read, {report.matched} matched, "
            f"{report.new_findings} new, {report.alerts} alert(s); position {state.position}"
            + (f" of {state.tree_size}" if state.tree_size is not None else "")
        )
        if state.last_error:
            failed += 1
            line += f"; error: {state.last_error}"
        _progress(line)
    raise typer.Exit(ExitCode.UNKNOWN if failed else ExitCode.OK)


async def _watch(watch: Any, plans: Any, routes: Any, *, once: bool, from_start: bool) -> Any:
    from certvigil.alerts.delivery import channels_for_routes, deliver_due

    reports = await watch.run(plans, once=once, from_start=from_start)
    if routes:
        await deliver_due(watch.store, channels_for_routes(routes), datetime.now(UTC))
    return reports


def _progress(text: str) -> None:
    _stderr.print(markup(visible(text)))


# --- status -------------------------------------------------------------------------

STATUS_EXAMPLES = """[bold]Examples[/bold]
certvigil ct status -c certvigil.yaml
certvigil ct status --json --db /var/lib/certvigil/certvigil.db"""


@ct_app.command("status", epilog=STATUS_EXAMPLES)
def status_command(
    as_json: JsonDocumentOption = False,
    config: StoreConfigOption = None,
    db: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """How complete the CT watch is: per log and overall.

    Per log: tree size, position, backlog, entries/s, last success, last error.

    Logs the configuration reads but that were never read count against coverage.
    """
    del debug
    from certvigil.ct.watch import persist
    from certvigil.ct.watch.runner import backlog_entries, backlog_seconds

    store = open_existing_store(db, config)
    with store, store.read() as connection:
        logs = persist.list_logs(connection)
    planned, skipped, source = _planned(config)
    stalled_after = 3600.0
    behind_after = 3600.0
    if planned is not None:
        stalled_after, behind_after = planned[1], planned[2]
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for log in logs:
        state = log.state
        lag = backlog_seconds(state, log.last_entry_timestamp_ms)
        since = (now - state.last_success).total_seconds() if state.last_success else None
        health = "ok"
        if state.last_error:
            never_worked = since is None and log.errors_total >= 3
            health = "stalled" if never_worked or (since or 0) > stalled_after else "failing"
        elif since is None:
            health = "never read"
        elif since > stalled_after:
            health = "stalled"
        elif lag is not None and lag > behind_after:
            health = "behind"
        rows.append(
            {
                "log": log.description,
                "log_id": log.log_id,
                "url": log.url,
                "tree_size": state.tree_size,
                "position": state.position,
                "backlog_entries": backlog_entries(state),
                "backlog_seconds": lag,
                "entries_per_second": log.entries_per_second,
                "last_success": _iso(state.last_success),
                "last_error": state.last_error or None,
                "last_error_at": _iso(log.last_error_utc),
                "errors_total": log.errors_total,
                "malformed": state.malformed,
                "health": health,
            }
        )
    read_ids = {log.log_id for log in logs}
    never = [] if planned is None else [d for i, d in planned[0] if i not in read_ids]
    coverage = _coverage(rows, never, skipped, source)
    unhealthy = never or any(r["health"] != "ok" for r in rows)
    if as_json:
        document = {"logs": rows, "never_read": never, "coverage": coverage}
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(ExitCode.WARNING if unhealthy else ExitCode.OK)
    table = Table(box=None, pad_edge=False)
    for column in (
        "log",
        "tree size",
        "position",
        "backlog",
        "lag",
        "entries/s",
        "last success",
        "health",
    ):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            markup(visible(row["log"])),
            _num(row["tree_size"]),
            _num(row["position"]),
            _num(row["backlog_entries"]),
            _span(row["backlog_seconds"]),
            "-" if row["entries_per_second"] is None else f"{row['entries_per_second']:.0f}",
            (row["last_success"] or "never")[:19],
            row["health"],
        )
    console = Console(soft_wrap=False, highlight=False)
    console.print(table)
    for row in rows:
        if row["last_error"]:
            console.print(markup(visible(f"{row['log']}: last error: {row['last_error']}")))
    for name in never:
        console.print(markup(visible(f"{name}: should be read, never was (run ct watch)")))
    console.print(markup(visible(coverage["statement"])))
    raise typer.Exit(ExitCode.WARNING if unhealthy else ExitCode.OK)


def _planned(config: Path | None) -> tuple[Any, dict[str, int], str]:
    """The logs a configuration says to read, the list's skipped logs by reason, source."""
    from certvigil.config.discovery import find_config
    from certvigil.config.loading import load_config
    from certvigil.ct.errors import CtError
    from certvigil.ct.watch.logs import watched_logs

    choice = find_config(config)
    if choice.path is None:
        return None, {}, ""
    loaded = load_config(choice.path)
    settings = loaded.config.ct
    if settings is None:
        return None, {}, ""
    try:
        plans = watched_logs(settings, loaded.base_dir, now=datetime.now(UTC))
    except (CtError, UsageError) as exc:
        _progress(f"warning: the log list cannot be read: {exc}")
        return None, {}, ""
    skipped: dict[str, int] = {}
    for item in plans.skipped:
        skipped[item.reason.value] = skipped.get(item.reason.value, 0) + 1
    planned = [(p.log.log_id_b64, p.log.description) for p in plans.tail]
    source = f"list {plans.list_version} ({plans.source})" if plans.source else "configured logs"
    return (planned, settings.stalled_after, settings.behind_after), skipped, source


def _coverage(
    rows: list[dict[str, Any]], never: list[str], skipped: dict[str, int], source: str
) -> dict[str, Any]:
    ok = sum(1 for r in rows if r["health"] == "ok")
    total = len(rows) + len(never)
    backlog = sum(r["backlog_entries"] or 0 for r in rows)
    statement = (
        f"Coverage: {ok} of {total} log(s) read up to their tree head"
        f" ({backlog} entries not yet read"
        + (f", {len(never)} log(s) never read" if never else "")
        + ")"
    )
    if source:
        left_out = ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()))
        statement += f"; logs from {source}" + (f"; left out: {left_out}" if left_out else "")
    statement += (
        ". Certificates are seen once logged in a log read here; a CA must log in at "
        "least two operators' logs, so reading every usable log covers every publicly "
        "trusted certificate."
    )
    return {
        "logs_ok": ok,
        "logs_total": total,
        "backlog_entries": backlog,
        "skipped": skipped,
        "statement": statement,
    }


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


# --- findings -----------------------------------------------------------------------

FINDINGS_EXAMPLES = """[bold]Examples[/bold]
certvigil ct findings -c certvigil.yaml
certvigil ct findings --since 1d --live
certvigil ct findings --since 7d --json
certvigil ct findings --since 2026-12-01 --db ct.db"""


def parse_since(text: str, now: datetime) -> datetime:
    """A ``--since`` value: an ISO date or time (UTC unless given) or a duration (``7d``).

    Raises:
        UsageError: Neither.
    """
    from certvigil.config.units import parse_duration_s

    stripped = text.strip()
    if re.fullmatch(r"[0-9.]+\s*[smhdw]?(\s*[0-9.]+\s*[smhdw]?)*", stripped):
        try:
            return now - timedelta(seconds=parse_duration_s(stripped))
        except ValueError as exc:
            raise UsageError(f'--since "{text}": {exc}') from None
    try:
        when = datetime.fromisoformat(stripped)
    except ValueError:
        raise UsageError(
            f'--since "{text}": expected a date (2026-12-01), a time or a duration (7d)'
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@ct_app.command("findings", epilog=FINDINGS_EXAMPLES)
def findings_command(
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="WHEN", help="Only findings since WHEN: a date or 7d."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", min=1, help="At most N findings.")
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Check each name now: DNS, HTTPS status, page title."),
    ] = False,
    live_port: Annotated[
        int, typer.Option("--live-port", metavar="PORT", min=1, max=65535, help="HTTPS port.")
    ] = 443,
    as_json: JsonDocumentOption = False,
    config: StoreConfigOption = None,
    db: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """Certificates found in CT for the watched domains, each once, with their kinds.

    Each names its SHA-256, serial, issuer, names, log and index, and later sightings.
    """
    del debug
    from certvigil.ct.watch import persist

    now = datetime.now(UTC)
    cutoff = parse_since(since, now) if since is not None else None
    store = open_existing_store(db, config)
    from certvigil.ct.watch.recheck import latest_checks

    with store, store.read() as connection:
        findings = persist.list_findings(connection, since=cutoff, limit=limit)
        stored_checks = latest_checks(connection, [f.id for f in findings])
    liveness: dict[str, Any] = {}
    if live:
        names = list(dict.fromkeys(n.removeprefix("*.") for f in findings for n in f.names))
        if len(names) > _MAX_LIVE_NAMES:
            _progress(f"--live: checking the first {_MAX_LIVE_NAMES} of {len(names)} names")
        liveness = asyncio.run(
            _check_names(names[:_MAX_LIVE_NAMES], _dns_server(config), live_port)
        )
    if as_json:
        document = {
            "findings": [
                _finding_json(f, liveness if live else None)
                | {"liveness_checks": [_check_json(c) for c in stored_checks.get(f.id, ())]}
                for f in findings
            ]
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(ExitCode.OK)
    console = Console(soft_wrap=True, highlight=False)
    if not findings:
        _progress("no findings" + (f" since {cutoff.isoformat()}" if cutoff else ""))
    for f in findings:
        kinds = ", ".join(f.kinds) or "matched"
        what = "precertificate" if f.is_precert else "certificate"
        console.print(markup(visible(f"{f.found_at_utc.isoformat()[:19]}  {kinds}")))
        console.print(markup(visible(f"  {what} {f.sha256_hex}  serial {f.serial_hex}")))
        console.print(markup(visible(f"  issuer {f.issuer}")))
        console.print(markup(visible(f"  names {', '.join(f.names)}")))
        console.print(markup(visible(f"  first seen in {f.log_description} at {f.entry_index}")))
        for log, index, relation in f.sightings:
            console.print(markup(visible(f"  also {relation} in {log} at {index}")))
        for check in stored_checks.get(f.id, ()):
            console.print(markup(visible(f"  checked {check.name}: {_check_words(check)}")))
        for name in dict.fromkeys(n.removeprefix("*.") for n in f.names):
            if name in liveness:
                console.print(markup(visible(f"  live {name}: {_live_words(liveness[name])}")))
    raise typer.Exit(ExitCode.OK)


_MAX_LIVE_NAMES = 200


def _dns_server(config: Path | None) -> str | None:
    from certvigil.config.discovery import find_config
    from certvigil.config.loading import load_config

    choice = find_config(config)
    if choice.path is None:
        return None
    settings = load_config(choice.path).config.ct
    return settings.dns_server if settings is not None else None


async def _check_names(names: list[str], dns_server: str | None, port: int) -> dict[str, Any]:
    import dns.asyncresolver

    from certvigil.ct.watch.liveness import check_liveness

    resolver = dns.asyncresolver.Resolver()
    if dns_server:
        host, _, text = dns_server.rpartition(":")
        if not host or not text.isdigit():
            host, text = dns_server, "53"
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [host]
        resolver.port = int(text)
    gate = asyncio.Semaphore(8)

    async def one(name: str) -> Any:
        async with gate:
            return await check_liveness(name, resolver=resolver, port=port)

    return {result.name: result for result in await asyncio.gather(*(one(n) for n in names))}


def _live_words(result: Any) -> str:
    if result.https_status is not None:
        title = f' "{result.title}"' if result.title else ""
        return f"HTTPS {result.https_status}{title} at {result.address}"
    where = f" ({', '.join(result.addresses)})" if result.addresses else ""
    return f"not live{where}: {result.error}"


def _asn_words(asn: int | None, prefix: str | None, country: str | None, name: str | None) -> str:
    if asn is None:
        return ""
    where = " ".join(p for p in (prefix, country) if p)
    return f", AS{asn}" + (f" {where}" if where else "") + (f" ({name})" if name else "")


def _check_words(check: Any) -> str:
    """A stored check in words: what it answered, its AS, when and how often."""
    if check.https_status is not None:
        title = f' "{check.title}"' if check.title else ""
        state = f"HTTPS {check.https_status}{title} at {check.address}"
    else:
        where = f" ({', '.join(check.addresses)})" if check.addresses else ""
        state = f"not live{where}: {check.error}"
    asn = _asn_words(check.asn, check.asn_prefix, check.asn_country, check.asn_name)
    when = check.checked_at_utc.isoformat()[:19]
    times = "1 check" if check.checks == 1 else f"{check.checks} checks"
    return f"{state}{asn}; last {when} ({times})"


def _check_json(check: Any) -> dict[str, Any]:
    return {
        "name": check.name,
        "checked_at": _iso(check.checked_at_utc),
        "checks": check.checks,
        "addresses": list(check.addresses),
        "address": check.address,
        "https_status": check.https_status,
        "title": check.title,
        "asn": check.asn,
        "asn_prefix": check.asn_prefix,
        "asn_country": check.asn_country,
        "asn_name": check.asn_name,
        "asn_source": check.asn_source,
        "error": check.error or None,
    }


def _live_json(result: Any) -> dict[str, Any]:
    return {
        "addresses": list(result.addresses),
        "address": result.address,
        "https_status": result.https_status,
        "title": result.title,
        "error": result.error or None,
    }


def _finding_json(f: Any, liveness: dict[str, Any] | None = None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if liveness is not None:
        extra["liveness"] = {
            name: _live_json(liveness[name])
            for name in dict.fromkeys(n.removeprefix("*.") for n in f.names)
            if name in liveness
        }
    return extra | {
        "sha256": f.sha256_hex,
        "certificate_type": "precertificate" if f.is_precert else "certificate",
        "serial": f.serial_hex,
        "issuer": f.issuer,
        "names": list(f.names),
        "watched_domains": list(f.watched),
        "log": f.log_description,
        "log_id": f.log_id,
        "index": f.entry_index,
        "kinds": list(f.kinds),
        "not_before": _iso(f.not_before_utc),
        "not_after": _iso(f.not_after_utc),
        "logged_at": _iso(f.logged_at_utc),
        "found_at": _iso(f.found_at_utc),
        "sightings": [
            {"log": log, "index": index, "relation": relation}
            for log, index, relation in f.sightings
        ],
    }


# --- baseline, authorize-ca -----------------------------------------------------------

BASELINE_EXAMPLES = """[bold]Examples[/bold]
certvigil ct baseline -c certvigil.yaml
certvigil ct baseline --auto -c certvigil.yaml"""


@ct_app.command("baseline", epilog=BASELINE_EXAMPLES)
def baseline_command(
    auto: Annotated[
        bool,
        typer.Option(
            "--auto", help="Authorise the issuers of the certificates the inventory serves now."
        ),
    ] = False,
    as_json: JsonDocumentOption = False,
    config: StoreConfigOption = None,
    db: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """Show the CAs authorised per watched domain; --auto adds the ones in use.

    --auto authorises the issuers of the watched names' certificates served now.
    """
    del debug
    from sqlalchemy import select

    from certvigil.ct.match import WatchList
    from certvigil.ct.watch import persist
    from certvigil.store.models import CERTIFICATES, DEPLOYMENTS

    loaded, settings = _settings(config)
    watchlist = WatchList(d.name for d in settings.domains)
    store = open_existing_store(db, loaded.path)
    added: list[tuple[str, str]] = []
    with store:
        if auto:
            now = datetime.now(UTC)
            c, d = CERTIFICATES.c, DEPLOYMENTS.c
            with store.write() as connection:
                rows = connection.execute(
                    select(c.issuer, c.san_dns, c.subject_cn)
                    .join(DEPLOYMENTS, d.certificate_sha256 == c.sha256_hex)
                    .where(d.is_current.is_(True), d.chain_position == 0)
                    .distinct()
                ).all()
                for row in rows:
                    names = [n.lower().rstrip(".") for n in (row.san_dns or [])]
                    if row.subject_cn:
                        names.append(row.subject_cn.lower().rstrip("."))
                    for match in watchlist.match(names):
                        if persist.add_authorized_ca(
                            connection,
                            domain=match.watched,
                            ca=row.issuer,
                            source="baseline",
                            now=now,
                        ):
                            added.append((match.watched, row.issuer))
        with store.read() as connection:
            stored = persist.list_authorized_cas(connection)
    entries = [
        {"domain": d.name, "ca": ca, "source": "config", "added_at": None}
        for d in settings.domains
        for ca in d.authorized_cas
    ] + [
        {"domain": domain, "ca": ca, "source": source, "added_at": _iso(when)}
        for domain, ca, source, when in stored
    ]
    unjudged = sorted({d.name for d in settings.domains} - {e["domain"] for e in entries})
    if as_json:
        document = {
            "authorized_cas": entries,
            "added": [list(a) for a in added],
            "domains_without_authorized_cas": unjudged,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        raise typer.Exit(ExitCode.OK)
    console = Console(soft_wrap=True, highlight=False)
    for entry in entries:
        console.print(markup(visible(f"{entry['domain']}  {entry['ca']}  ({entry['source']})")))
    if auto:
        _progress(f"{len(added)} CA(s) added from the inventory's current certificates")
    for name in unjudged:
        _progress(f"{name}: no authorised CA: unauthorized_ca is not judged for it")
    raise typer.Exit(ExitCode.OK)


AUTHORIZE_EXAMPLES = """[bold]Examples[/bold]
certvigil ct authorize-ca example.com "CN=R11,O=Let's Encrypt,C=US"
certvigil ct authorize-ca example.com "DigiCert Global G2 TLS RSA SHA256 2020 CA1"
certvigil ct authorize-ca example.com SPKI_SHA256_HEX"""


@ct_app.command("authorize-ca", epilog=AUTHORIZE_EXAMPLES)
def authorize_ca_command(
    domain: Annotated[str, typer.Argument(metavar="DOMAIN", help="The watched domain.")],
    ca: Annotated[
        str,
        typer.Argument(
            metavar="CA", help="Issuer commonName, RFC 4514 DN, or SHA-256 (hex) of its key."
        ),
    ],
    config: StoreConfigOption = None,
    db: DatabaseOption = None,
    debug: DebugOption = False,
) -> None:
    """Allow a CA to issue for a watched domain (no unauthorized_ca alert for it)."""
    del debug
    from certvigil.ct.names import normalize_name
    from certvigil.ct.watch import persist
    from certvigil.store import open_store

    name = normalize_name(domain)
    if name is None or name.startswith("*"):
        raise UsageError(f'"{visible(domain)}": not a domain name')
    text = ca.strip()
    if not text or len(text) > 1024 or not text.isprintable():
        raise UsageError("CA: give an issuer commonName, DN or key hash (printable, <= 1024)")
    from certvigil.cli.store_access import database_url

    store = open_store(database_url(db, config))
    with store, store.write() as connection:
        added = persist.add_authorized_ca(
            connection, domain=name, ca=text, source="manual", now=datetime.now(UTC)
        )
    _progress(f"{name}: {text} {'authorised' if added else 'was already authorised'}")
    raise typer.Exit(ExitCode.OK)


# --- update-log-list ------------------------------------------------------------------

UPDATE_EXAMPLES = """[bold]Examples[/bold]
certvigil ct update-log-list
certvigil ct update-log-list --output /var/lib/certvigil/ct"""


@ct_app.command("update-log-list", epilog=UPDATE_EXAMPLES)
def update_log_list_command(
    url: Annotated[
        str | None,
        typer.Option("--url", metavar="URL", help="The list (default: Google's v3 list)."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", metavar="PEM", help="The list's signing key (default: Google's)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", metavar="DIR", help="Where to keep it (default: the data directory)."
        ),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Fetch the log list and its signature, verify it, keep it for ct watch.

    ct watch reads it when no ct.log_list is configured (before: the shipped copy).
    """
    del debug
    import os

    from certvigil.ct.log_list import parse_log_list, verify_log_list_signature
    from certvigil.ct.watch.logs import (
        GOOGLE_LOG_LIST_URL,
        data_directory,
        fetch_bytes,
        shipped_file,
    )

    source = url or GOOGLE_LOG_LIST_URL
    if not source.startswith(("https://", "http://")):
        raise UsageError(f"--url {visible(source)}: not an http(s) URL")
    try:
        public_key = key.read_bytes() if key is not None else shipped_file("log_list_pubkey.pem")
    except OSError as exc:
        raise UsageError(f"--key {key}: cannot be read: {exc.strerror}") from None
    data = fetch_bytes(source, what="log list")
    signature = fetch_bytes(source.removesuffix(".json") + ".sig", what="log list signature")
    verify_log_list_signature(data, signature, public_key, source=source)
    parsed = parse_log_list(data, source=source)
    directory = output or data_directory()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        kept = (
            ("log_list_pubkey.pem", public_key),
            ("log_list.sig", signature),
            ("log_list.json", data),
        )
        for name, content in kept:
            temporary = directory / f".{name}.tmp"
            temporary.write_bytes(content)
            os.replace(temporary, directory / name)
    except OSError as exc:
        raise ConfigError(str(directory), f"cannot write the log list: {exc.strerror}") from None
    _progress(
        f"log list {parsed.version} ({len(parsed.logs)} logs) verified and kept in {directory}"
    )
    raise typer.Exit(ExitCode.OK)
