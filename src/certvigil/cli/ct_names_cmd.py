"""``certvigil ct search|check-rules|feed``: crt.sh history, name rules, a certstream feed.

``register(ct_app)`` adds the three commands to the ``ct`` group.

Exit codes: ``search`` 0, or 1 when crt.sh's 10,000-row cap was hit (the history is
incomplete), 3 when crt.sh could not be asked; ``check-rules`` 1 when the name matches
the keyword rules or imitates a watched domain, else 0; ``feed`` runs until stopped
(130 on Ctrl-C). Configuration and usage errors exit 64.

The rules ``check-rules`` and ``feed`` read from ``--config`` are the ``ct:`` section's
``domains`` (each ``name``), ``keywords`` (``search``, ``threshold``, ``blacklist``) and
``log_list``; ``_read_ct_section`` reads just those keys.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import DebugOption, JsonDocumentOption, parse_listen
from certvigil.ct.crtsh import CrtshCertificate
from certvigil.ct.errors import CtError
from certvigil.ct.keywords import KeywordRules, KeywordVerdict
from certvigil.ct.lookalike import LookalikeIndex, LookalikeMatch, registrable
from certvigil.ct.match import WatchList
from certvigil.ct.names import normalize_name, to_unicode
from certvigil.errors import ConfigError, UsageError
from certvigil.output.safe_text import cell, visible

_MAX_CONFIG_BYTES = 4 * 1024 * 1024

SEARCH_EXAMPLES = """[bold]Examples[/bold]
certvigil ct search example.com
certvigil ct search example.com --exclude-expired
certvigil ct search example.com --json > history.json"""

CHECK_RULES_EXAMPLES = """[bold]Examples[/bold]
certvigil ct check-rules login-examplebank.com --config certvigil.yaml
certvigil ct check-rules examp1e.com --watch example.com
certvigil ct check-rules secure-paypal.com --keyword paypal --keyword secure"""

FEED_EXAMPLES = """[bold]Examples[/bold]
certvigil ct feed --config certvigil.yaml
certvigil ct feed --log-list log_list.json --listen 127.0.0.1:8765
certvigil ct feed --config certvigil.yaml --from-start"""


@dataclass(frozen=True, slots=True)
class CtRules:
    """What ``--config`` gives the name commands.

    Attributes:
        domains: The watched domains (``ct.domains[].name``).
        search: ``ct.keywords.search``.
        threshold: ``ct.keywords.threshold`` (2 when absent).
        blacklist: ``ct.keywords.blacklist``.
        log_list: ``ct.log_list``, or ``""``.
    """

    domains: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    threshold: int = 2
    blacklist: tuple[str, ...] = ()
    log_list: str = ""


def _strings(value: object, path: Path, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(str(path), "must be a list of strings", location=field)
    return tuple(value)


def _read_ct_section(path: Path) -> CtRules:
    """The keys of the ``ct:`` section these commands use (see the module docstring).

    Raises:
        ConfigError: The file cannot be read, is not YAML, or a key has the wrong type.
    """
    try:
        if path.stat().st_size > _MAX_CONFIG_BYTES:
            raise ConfigError(str(path), f"larger than {_MAX_CONFIG_BYTES} bytes")
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(str(path), f"not YAML: {type(exc).__name__}") from None
    ct = document.get("ct") if isinstance(document, dict) else None
    if ct is None:
        raise ConfigError(str(path), "no ct: section")
    if not isinstance(ct, dict):
        raise ConfigError(str(path), "must be a mapping", location="ct")
    domains: list[str] = []
    raw_domains = ct.get("domains") or []
    if not isinstance(raw_domains, list):
        raise ConfigError(str(path), "must be a list", location="ct.domains")
    for position, item in enumerate(raw_domains):
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str):
            raise ConfigError(
                str(path), "must be a domain name", location=f"ct.domains[{position}].name"
            )
        domains.append(name)
    keywords = ct.get("keywords") or {}
    if not isinstance(keywords, dict):
        raise ConfigError(str(path), "must be a mapping", location="ct.keywords")
    threshold = keywords.get("threshold", 2)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise ConfigError(
            str(path), "must be a whole number from 1", location="ct.keywords.threshold"
        )
    log_list = ct.get("log_list") or ""
    if not isinstance(log_list, str):
        raise ConfigError(str(path), "must be a file name or URL", location="ct.log_list")
    return CtRules(
        domains=tuple(domains),
        search=_strings(keywords.get("search"), path, "ct.keywords.search"),
        threshold=threshold,
        blacklist=_strings(keywords.get("blacklist"), path, "ct.keywords.blacklist"),
        log_list=log_list,
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _issuer_cn(issuer: str) -> str:
    for part in issuer.split(", "):
        if part.startswith("CN="):
            return part[3:]
    return issuer


def _certificate_json(c: CrtshCertificate) -> dict[str, Any]:
    return {
        "crtsh_id": c.crtsh_id,
        "issuer_ca_id": c.issuer_ca_id,
        "issuer": c.issuer_name,
        "common_name": c.common_name,
        "names": list(c.dns_names),
        "unparsed_names": list(c.unparsed_names),
        "serial": c.serial_hex,
        "logged": _iso(c.logged_utc),
        "not_before": _iso(c.not_before_utc),
        "not_after": _iso(c.not_after_utc),
    }


def search_command(
    domain: Annotated[str, typer.Argument(help="The domain: it and every name below it.")],
    json_output: JsonDocumentOption = False,
    exclude_expired: Annotated[
        bool, typer.Option("--exclude-expired", help="Leave out expired certificates.")
    ] = False,
    crtsh_url: Annotated[
        str,
        typer.Option("--crtsh-url", metavar="URL", help="crt.sh's address (or a mirror)."),
    ] = "https://crt.sh/",
    debug: DebugOption = False,
) -> int:
    """Show a domain's certificate history from crt.sh, and whether it is complete.

    crt.sh answers at most 10,000 rows a query; when it does, the output says so.

    crt.sh lags the logs by about a day: a baseline, not the watch.

    Exit code: 1 when the cap was hit, 3 when crt.sh could not be asked, else 0.
    """
    del debug
    from certvigil.ct.fetch.crtsh import search_crtsh

    try:
        search = asyncio.run(
            search_crtsh(domain, base_url=crtsh_url, exclude_expired=exclude_expired)
        )
    except ValueError as exc:
        raise UsageError(f"{visible(domain[:100])}: {exc}") from None
    certificates = search.answer.certificates
    cap_notice = (
        "crt.sh returned its maximum of 10,000 rows for a query: the history shown is "
        "incomplete (watch the logs for what is missing)"
    )
    if json_output:
        document = {
            "domain": search.domain,
            "source": "crt.sh",
            "queries": list(search.queries),
            "is_capped": search.is_capped,
            "notice": cap_notice if search.is_capped else None,
            "rows": search.answer.row_count,
            "malformed_rows": list(search.answer.malformed),
            "certificates": [_certificate_json(c) for c in certificates],
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        table = Table(title=None, show_lines=False)
        table.add_column("logged", no_wrap=True)
        table.add_column("not after", no_wrap=True)
        table.add_column("issuer", overflow="fold")
        table.add_column("serial", no_wrap=True)
        table.add_column("names", overflow="fold")
        for c in certificates:
            names = "\n".join(c.dns_names[:5])
            if len(c.dns_names) > 5:
                names += f"\n+{len(c.dns_names) - 5} more"
            table.add_row(
                cell(c.logged_utc.date().isoformat() if c.logged_utc else "?"),
                cell(c.not_after_utc.date().isoformat()),
                cell(_issuer_cn(c.issuer_name)),
                cell(c.serial_hex[:8]),
                # visible() escapes a newline: the names join after escaping.
                Text("\n").join(cell(n) for n in names.split("\n")),
            )
        Console(soft_wrap=False).print(table)
    err = Console(stderr=True)
    err.print(
        f"crt.sh: {len(certificates)} certificates for {visible(search.domain)} "
        f"({search.answer.row_count} rows, {len(search.queries)} queries)",
        markup=False,
        highlight=False,
    )
    for problem in search.answer.malformed[:10]:
        err.print(f"skipped: {visible(problem)}", markup=False, highlight=False)
    if search.is_capped:
        err.print(f"warning: {cap_notice}", markup=False, highlight=False)
        return ExitCode.WARNING
    return ExitCode.OK


def _explain_lookalike(found: LookalikeMatch | None) -> str:
    if found is None:
        return "no: it imitates no watched domain"
    return (
        f"yes: {to_unicode(found.lookalike)} imitates {to_unicode(found.imitated)} "
        f"({found.technique.value})"
    )


def check_rules_command(
    name: Annotated[str, typer.Argument(help="The host name to check.")],
    config: Annotated[
        Path | None,
        typer.Option(
            "-c", "--config", metavar="FILE", help="Read domains and keywords from its ct: section."
        ),
    ] = None,
    watch: Annotated[
        list[str] | None,
        typer.Option("--watch", metavar="DOMAIN", help="A watched domain (repeatable)."),
    ] = None,
    keyword: Annotated[
        list[str] | None,
        typer.Option("--keyword", metavar="WORD", help="A search keyword (repeatable)."),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option("--threshold", metavar="N", min=1, help="Keywords a name needs."),
    ] = None,
    json_output: JsonDocumentOption = False,
    debug: DebugOption = False,
) -> int:
    """Explain whether a name matches the keyword rules or imitates a watched domain.

    Keywords: a match needs the threshold of distinct keywords and no blacklist entry.

    Look-alikes: typos, homoglyphs, bitsquats, TLD swaps, confusable characters.

    Exit code: 1 when the name matches either rule, else 0.
    """
    del debug
    rules = _read_ct_section(config) if config is not None else CtRules()
    domains = rules.domains + tuple(watch or ())
    search = rules.search + tuple(keyword or ())
    if not domains and not search:
        raise UsageError("no rules to check against: give --config FILE, --watch or --keyword")
    normalised = normalize_name(name)
    if normalised is None:
        raise UsageError(f'"{visible(name[:200])}": not a host name')
    try:
        keyword_rules = KeywordRules(
            search, threshold=threshold or rules.threshold, blacklist=rules.blacklist
        )
        index = LookalikeIndex.build(domains) if domains else None
        watched = WatchList(domains) if domains else None
    except (ValueError, CtError) as exc:
        where = str(config) if config is not None else "command line"
        raise ConfigError(where, str(exc)) from None
    keyword_result = keyword_rules.check(normalised)
    lookalike = index.match(normalised) if index is not None else None
    under = watched.watched_for(normalised) if watched is not None else []
    is_match = keyword_result.verdict is KeywordVerdict.MATCH or lookalike is not None
    if json_output:
        document = {
            "name": normalised,
            "unicode": to_unicode(normalised),
            "registrable_domain": registrable(normalised).domain or None,
            "watched": [m.watched for m in under],
            "keywords": {
                "verdict": keyword_result.verdict.value,
                "found": list(keyword_result.keywords),
                "found_as_lookalike": list(keyword_result.confusable),
                "blacklisted_by": list(keyword_result.blacklisted_by),
                "threshold": keyword_result.threshold,
                "explanation": keyword_rules.explain(normalised) if search else None,
            },
            "lookalike": None
            if lookalike is None
            else {
                "lookalike": lookalike.lookalike,
                "imitates": lookalike.imitated,
                "technique": lookalike.technique.value,
            },
            "is_match": is_match,
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        shown = to_unicode(normalised)
        lines = [f"name:        {shown}" + (f" ({normalised})" if shown != normalised else "")]
        if under:
            lines.append(f"watched:     under {', '.join(m.watched for m in under)}")
        lines.append(
            "keywords:    " + (keyword_rules.explain(normalised) if search else "no keywords")
        )
        if index is not None:
            lines.append("look-alike:  " + _explain_lookalike(lookalike))
        for line in lines:
            typer.echo(visible(line))
    return ExitCode.WARNING if is_match else ExitCode.OK


def feed_command(
    config: Annotated[
        Path | None,
        typer.Option("-c", "--config", metavar="FILE", help="Read ct.log_list from it."),
    ] = None,
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Address to serve on.")
    ] = "127.0.0.1:8765",
    log_list: Annotated[
        Path | None,
        typer.Option("--log-list", metavar="FILE", help="The log list (v3) to tail."),
    ] = None,
    from_start: Annotated[
        bool, typer.Option("--from-start", help="Read each log from entry 0, not its end.")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", metavar="S", min=1.0, help="Seconds between log polls.")
    ] = 60.0,
    debug: DebugOption = False,
) -> int:
    """Serve what certvigil reads from the logs as a certstream-compatible stream.

    Streams: / (lite), /full-stream, /domains-only; the latest message: /example.json.

    Each entry is verified against its log's signed tree before it is sent.
    """
    del debug
    from certvigil.ct.fetch.feed import CertstreamFeed, tail_feed_entries
    from certvigil.ct.log_list import parse_log_list, select_logs

    host, port = parse_listen(listen, example="127.0.0.1:8765")
    source = log_list
    if source is None and config is not None:
        configured = _read_ct_section(config).log_list
        if configured.startswith(("http://", "https://")):
            raise UsageError(
                "ct feed reads a log list file; fetch the URL first (ct update-log-list)"
            )
        if configured:
            source = (
                (config.parent / configured)
                if not Path(configured).is_absolute()
                else Path(configured)
            )
    if source is None:
        raise UsageError("no logs to read: give --log-list FILE or --config FILE with ct.log_list")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError(str(source), f"cannot read: {exc.strerror or exc}") from None
    logs = select_logs(parse_log_list(data, source=str(source)), now=datetime.now(UTC)).tail
    err = Console(stderr=True)

    def report(log: Any, words: str) -> None:
        err.print(f"{visible(log.description)}: {visible(words)}", markup=False, highlight=False)

    async def serve() -> int:
        feed = CertstreamFeed(host, port)
        try:
            bound_host, bound_port = await feed.start()
        except OSError as exc:
            raise UsageError(f"--listen {visible(listen)}: {exc.strerror or exc}") from None
        err.print(
            f"serving {len(logs)} logs as certstream on ws://{bound_host}:{bound_port}/ "
            "(/, /full-stream, /domains-only, /example.json)",
            markup=False,
            highlight=False,
        )
        # SIGINT and SIGTERM stop it by handlers of its own: a process started in the
        # background by a shell inherits SIGINT ignored, and Python then raises no
        # KeyboardInterrupt.
        loop = asyncio.get_running_loop()
        stopped: list[int] = []
        stop = asyncio.Event()

        def on_signal(signum: int) -> None:
            stopped.append(signum)
            stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        running = asyncio.create_task(
            feed.run(
                tail_feed_entries(
                    [plan.log for plan in logs], from_start=from_start, poll_s=poll, errors=report
                )
            )
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (running, stopping):
                task.cancel()
            await asyncio.gather(running, stopping, return_exceptions=True)
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await feed.close()
        if running.done() and not running.cancelled():
            failure = running.exception()
            if failure is not None:
                raise failure
        return 128 + stopped[0] if stopped else 0

    code = asyncio.run(serve())
    if code:
        raise typer.Exit(code)
    return ExitCode.OK


def register(ct_app: typer.Typer) -> None:
    """Add ``search``, ``check-rules`` and ``feed`` to the ``ct`` group."""
    ct_app.command("search", epilog=SEARCH_EXAMPLES)(search_command)
    ct_app.command("check-rules", epilog=CHECK_RULES_EXAMPLES)(check_rules_command)
    ct_app.command("feed", epilog=FEED_EXAMPLES)(feed_command)
