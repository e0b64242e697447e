"""``certvigil zabbix discover|get``: low-level discovery and item values for Zabbix.

``discover`` prints the LLD JSON of the configured endpoints (or of the store's);
``get HOST:PORT KEY`` scans one endpoint and prints one value, and ``get HOST:PORT
json`` the whole document a master item keeps for dependent items
(``certvigil.integrations.zabbix``). Both run as a Zabbix external check
(``certvigil["zabbix","get","{#TARGET}","json",...]``) or an agent ``UserParameter``;
see docs/monitoring.md and contrib/zabbix/.

With ``--config``, ``get`` only scans endpoints the file names and uses their SNI,
STARTTLS, time-out and trust settings, as the exporter does; without it, the options
given. A probe that fails is data: ``json`` still prints a document (``success`` 0,
``error``) and exits 0, so dependent items see why. A single key without a value for
this endpoint (days left of an endpoint that did not answer) prints nothing and exits 1
with the reason on stderr, which Zabbix shows as the item's error.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import DebugOption
from certvigil.errors import TargetError, UsageError
from certvigil.files.truststore import TrustStoreCache, load_trust_store

if TYPE_CHECKING:
    from certvigil.config.expand import ScheduledTarget
from certvigil.integrations.zabbix import (
    ITEM_KEYS,
    DiscoveredEndpoint,
    discovery_document,
    item_document,
    item_value,
)
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.scan.scanner import one_endpoint_options, scan_stream
from certvigil.targets.parse import (
    ExpansionOptions,
    iter_argument_specs,
    iter_targets,
    normalise_hostname,
)
from certvigil.targets.target import StartTLS, Target
from certvigil.text_escape import visible

zabbix_app = typer.Typer(
    name="zabbix",
    help="Zabbix low-level discovery and item values (external check, agent).",
    no_args_is_help=True,
)
app.add_typer(zabbix_app, name="zabbix")

DEFAULT_TIMEOUT_S = 25.0
"""Below Zabbix's longest ``Timeout`` (30 s in 6.0), so the answer arrives in time."""
MODULES = ("default", "revocation", "deep")


class Source(StrEnum):
    """Where ``discover`` finds endpoints."""

    CONFIG = "config"
    STORE = "store"


DISCOVER_EXAMPLES = """[bold]Examples[/bold]
certvigil zabbix discover --config /etc/certvigil/certvigil.yaml
certvigil zabbix discover --config certvigil.yaml --from store"""


@zabbix_app.command("discover", epilog=DISCOVER_EXAMPLES)
def discover_command(
    config: Annotated[
        Path,
        typer.Option("--config", metavar="FILE", help="The daemon's configuration file."),
    ],
    source: Annotated[
        Source,
        typer.Option("--from", help="Endpoints of the configuration, or every one in the store."),
    ] = Source.CONFIG,
    db: Annotated[
        str | None,
        typer.Option("--db", metavar="URL", help="With --from store: the database."),
    ] = None,
    debug: DebugOption = False,
) -> None:
    """Print low-level discovery JSON: {#HOST}, {#PORT}, {#SNI}, {#STARTTLS}, tags."""
    del debug  # read from argv by certvigil.cli.app.main
    from certvigil.config.expand import expand_targets
    from certvigil.config.loading import load_config

    if source is Source.CONFIG:
        if db is not None:
            raise UsageError("--db: only with --from store")
        expanded = expand_targets(load_config(config))
        endpoints = [
            DiscoveredEndpoint(
                host=s.target.host,
                port=s.target.port,
                sni=s.target.sni or "",
                starttls=s.target.starttls.value if s.target.starttls else "",
                tags=s.tags,
            )
            for s in expanded.targets
        ]
    else:
        # Imported here: SQLAlchemy would add a third of a second to every `get`.
        from certvigil.cli.store_access import open_existing_store

        with open_existing_store(db, config) as store:
            endpoints = [
                DiscoveredEndpoint(
                    host=r.target.host,
                    port=r.target.port,
                    sni=r.target.sni or "",
                    starttls=r.target.starttls.value if r.target.starttls else "",
                    tags=r.tags,
                )
                for r in store.list_endpoints()
            ]
    sys.stdout.write(json.dumps(discovery_document(endpoints), ensure_ascii=True) + "\n")


def _target(text: str, *, sni: str | None, starttls: str | None) -> Target:
    protocol = None
    if starttls:
        try:
            protocol = StartTLS(starttls.lower())
        except ValueError:
            names = ", ".join(p.value for p in StartTLS)
            raise UsageError(f'--starttls "{visible(starttls)}": use one of {names}') from None
    sni_name = None
    if sni:
        try:
            sni_name = normalise_hostname(sni)
        except ValueError as exc:
            raise UsageError(f'--sni "{visible(sni)}": {exc}') from None
    errors: list[TargetError] = []
    targets = list(
        iter_targets(
            iter_argument_specs([text[:300]]),
            options=ExpansionOptions(default_ports=(443,), sni=sni_name, starttls=protocol),
            on_error=errors.append,
        )
    )
    if errors:
        raise UsageError(str(errors[0]))
    if len(targets) != 1:
        raise UsageError(f'"{visible(text)}": get takes one endpoint, not {len(targets)}')
    return targets[0]


def _configured(config: Path, wanted: Target) -> ScheduledTarget:
    """The configured endpoint ``wanted`` names: the one with exactly its host, port, SNI
    and STARTTLS, else the first with its host and port whose SNI and STARTTLS agree
    with those given (an unset one matches any)."""
    # Imported here: pydantic's models cost half a second, which `get` without
    # --config (run for each endpoint on every poll) need not pay.
    from certvigil.config.expand import expand_targets
    from certvigil.config.loading import load_config

    targets = expand_targets(load_config(config)).targets
    for scheduled in targets:
        if scheduled.target == wanted:
            return scheduled
    for scheduled in targets:
        target = scheduled.target
        if (target.host, target.port) != (wanted.host, wanted.port):
            continue
        if wanted.sni is not None and target.sni != wanted.sni:
            continue
        if wanted.starttls is not None and target.starttls != wanted.starttls:
            continue
        return scheduled
    raise UsageError(f"{wanted}: not an endpoint of {config}")


async def _scan(
    target: Target, *, module: str, each_s: float, budget_s: float, trust: TrustStore
) -> EndpointReport:
    """The endpoint's report; a failed one with kind ``timeout`` once ``budget_s`` passed."""
    options = one_endpoint_options(
        each_s=min(each_s, budget_s),
        budget_s=budget_s,
        deep=module == "deep",
        revocation=module != "default",
    )
    try:
        async with asyncio.timeout(budget_s):
            async for report in scan_stream([target], options=options, trust=trust):
                return report
    except TimeoutError:
        now = datetime.now(UTC)
        failure = ProbeFailure(
            target=target,
            kind=FailureKind.TIMEOUT,
            detail=f"no verdict within {budget_s:g} s",
            observed_at_utc=now,
            peer_address=None,
        )
        return EndpointReport(target=target, evaluated_at_utc=now, failure=failure)
    raise AssertionError("scan_stream yields one report per target")  # pragma: no cover


GET_EXAMPLES = """[bold]Examples[/bold]
certvigil zabbix get www.example.org:443 json
certvigil zabbix get www.example.org:443 days_left
certvigil zabbix get mail.example.org:25 json --starttls smtp --module deep
certvigil zabbix get '[2001:db8::1]:443' json --config certvigil.yaml"""

_KEYS_HELP = "json (the master item's document) or one of: " + ", ".join(ITEM_KEYS)


@zabbix_app.command("get", epilog=GET_EXAMPLES)
def get_command(
    target: Annotated[str, typer.Argument(metavar="HOST:PORT", help="The endpoint.")],
    key: Annotated[str, typer.Argument(metavar="KEY", help=_KEYS_HELP)],
    config: Annotated[
        Path | None,
        typer.Option("--config", metavar="FILE", help="Scan only endpoints of this file, its way."),
    ] = None,
    sni: Annotated[
        str | None, typer.Option("--sni", metavar="NAME", help="SNI to send ('' default).")
    ] = None,
    starttls: Annotated[
        str | None,
        typer.Option("--starttls", metavar="PROTO", help="smtp, imap, pop3, ... ('' none)."),
    ] = None,
    module: Annotated[
        str,
        typer.Option("--module", metavar="NAME", help="default, revocation or deep."),
    ] = "default",
    rootcert_file: Annotated[
        Path | None,
        typer.Option("--rootcert-file", metavar="PEM", help="Also trust these CAs."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("-t", "--timeout", metavar="S", help="The whole probe's limit.")
    ] = DEFAULT_TIMEOUT_S,
    debug: DebugOption = False,
) -> None:
    """Scan one endpoint; print one item value, or the JSON for dependent items."""
    del debug  # read from argv by certvigil.cli.app.main
    if key != "json" and key not in ITEM_KEYS:
        raise UsageError(f'key "{visible(key[:100])}": use {_KEYS_HELP}')
    if module not in MODULES:
        raise UsageError(f'--module "{visible(module[:100])}": use one of {", ".join(MODULES)}')
    if not 0 < timeout <= 600:
        raise UsageError(f"-t/--timeout {timeout}: use more than 0 and at most 600 seconds")
    wanted = _target(target, sni=sni, starttls=starttls)
    if config is not None:
        if rootcert_file is not None:
            raise UsageError("--rootcert-file: the configuration's trust applies with --config")
        scheduled = _configured(config, wanted)
        wanted = scheduled.target
        each_s = scheduled.timeout_s
        trust = asyncio.run(TrustStoreCache().get(scheduled.trust))
    else:
        each_s = timeout
        trust = load_trust_store(ca_files=(rootcert_file,) if rootcert_file else ())
    started = time.perf_counter()
    report = asyncio.run(_scan(wanted, module=module, each_s=each_s, budget_s=timeout, trust=trust))
    document = item_document(report, duration_s=time.perf_counter() - started)
    if key == "json":
        sys.stdout.write(json.dumps(document, ensure_ascii=True) + "\n")
        return
    value = item_value(document, key)
    if value is None:
        reason = document["error"] or "not known for this endpoint"
        sys.stderr.write(f"error: {visible(str(wanted))}: {key}: {visible(reason)}\n")
        raise typer.Exit(ExitCode.WARNING)
    sys.stdout.write(visible(value) + "\n")
