"""``certvigil check HOST[:PORT]``: a Nagios/Icinga plugin for one endpoint.

Scans the endpoint with the scan's own code (and, when asked, its revocation and deep
checks), then prints one plugin result (``certvigil.integrations.nagios``) and exits
with its state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. Everything that goes wrong
before a verdict (a bad option, an unreadable ``--rootcert-file``, the ``-t`` time-out)
is UNKNOWN with the reason on the status line, as the plugin guidelines ask; nothing
goes to stderr that the monitoring system would have to read.

The options are check_ssl_cert's most used ones, with its defaults (``-w 20 -c 15``),
so a service definition can switch plugins by changing the command name and nothing
else. See docs/monitoring.md.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
import typer.core

from certvigil.analysis.model import EndpointReport
from certvigil.cli.app import _exception_classes, app
from certvigil.cli.options import DebugOption
from certvigil.errors import CertvigilError, TargetError
from certvigil.files.truststore import load_trust_store
from certvigil.integrations.nagios import (
    GRADE_ORDER,
    CheckResult,
    CheckThresholds,
    judge_report,
    unknown_result,
)
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import one_endpoint_options, scan_stream
from certvigil.targets.parse import (
    ExpansionOptions,
    iter_argument_specs,
    iter_targets,
    normalise_hostname,
)
from certvigil.targets.target import StartTLS, Target

DEFAULT_TIMEOUT_S = 30.0
"""The whole check's default time limit (check_ssl_cert's own default is 120 s;
Nagios 4 kills a check after ``service_check_timeout``, 60 s by default)."""


class _Usage(Exception):
    """A mistake on the command line, reported as UNKNOWN."""


def _positive(name: str, text: str, *, allow_zero: bool = True) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _Usage(f'{name} "{text}" is not a number') from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise _Usage(f"{name} must be a finite number of 0 or more, not {text}")
    if not allow_zero and value == 0:
        raise _Usage(f"{name} must be more than 0")
    return value


def _thresholds(
    *,
    warning: str,
    critical: str,
    issuer: str | None,
    require_no_tls1: bool,
    require_no_tls1_1: bool,
    grade_below: str | None,
) -> CheckThresholds:
    warning_days = _positive("-w/--warning", warning)
    critical_days = _positive("-c/--critical", critical)
    if critical_days > warning_days:
        raise _Usage(
            f"-c/--critical ({critical}) must not be more days than -w/--warning ({warning})"
        )
    pattern = None
    if issuer is not None:
        try:
            pattern = re.compile(issuer)
        except re.error as exc:
            raise _Usage(f'--issuer "{issuer}" is not a regular expression: {exc}') from None
    grade = None
    if grade_below is not None:
        grade = grade_below.strip().upper()
        if grade not in GRADE_ORDER:
            raise _Usage(f'--grade-below "{grade_below}": use one of {", ".join(GRADE_ORDER)}')
    return CheckThresholds(
        warning_days=warning_days,
        critical_days=critical_days,
        issuer_pattern=pattern,
        forbid_tls10=require_no_tls1,
        forbid_tls11=require_no_tls1_1,
        grade_below=grade,
    )


def _target(text: str, *, sni: str | None, starttls: str | None) -> Target:
    protocol = None
    if starttls is not None:
        try:
            protocol = StartTLS(starttls.lower())
        except ValueError:
            names = ", ".join(p.value for p in StartTLS)
            raise _Usage(f'--starttls "{starttls}": use one of {names}') from None
    sni_name = None
    if sni is not None:
        try:
            sni_name = normalise_hostname(sni)
        except ValueError as exc:
            raise _Usage(f'--sni "{sni}": {exc}') from None
    errors: list[TargetError] = []
    targets = list(
        iter_targets(
            iter_argument_specs([text]),
            options=ExpansionOptions(default_ports=(443,), sni=sni_name, starttls=protocol),
            on_error=errors.append,
        )
    )
    if errors:
        raise _Usage(str(errors[0]))
    if len(targets) != 1:
        raise _Usage(f'"{text}": check takes one endpoint, not {len(targets)}')
    return targets[0]


async def _scan_one(target: Target, options: ScanOptions, rootcert: Path | None) -> EndpointReport:
    trust = load_trust_store(ca_files=(rootcert,) if rootcert else ())
    async for report in scan_stream([target], options=options, trust=trust):
        return report
    raise AssertionError("scan_stream yields one report per target")  # pragma: no cover


def _check(
    target: Target,
    thresholds: CheckThresholds,
    *,
    timeout_s: float,
    ocsp: bool,
    crl: bool,
    rootcert: Path | None,
) -> CheckResult:
    # Each wait is bounded by the whole budget too; the outer time-out is what holds.
    each = min(10.0, timeout_s)
    options = one_endpoint_options(
        each_s=each,
        budget_s=timeout_s,
        deep=thresholds.needs_deep_probe,
        revocation=ocsp or crl,
        use_ocsp=ocsp,
        use_crl=crl,
    )

    async def bounded() -> EndpointReport:
        async with asyncio.timeout(timeout_s):
            return await _scan_one(target, options, rootcert)

    try:
        report = asyncio.run(bounded())
    except TimeoutError:
        return unknown_result(
            f"no verdict within the {timeout_s:g} s time-out (-t)", target=str(target)
        )
    return judge_report(report, thresholds)


class _PluginCommand(typer.core.TyperCommand):
    """Reports what the argument parser refuses (an option without its value) as UNKNOWN."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        try:
            return super().parse_args(ctx, args)
        except _exception_classes("UsageError") as exc:
            format_message = getattr(exc, "format_message", None)
            message = format_message() if callable(format_message) else str(exc)
            sys.stdout.write(unknown_result(f"usage: {message}").render())
            sys.stdout.flush()
            raise typer.Exit(3) from None


CHECK_EXAMPLES = """[bold]Examples[/bold]
certvigil check www.example.org -w 20 -c 15
certvigil check mail.example.org:25 --starttls smtp --ocsp
certvigil check 192.0.2.10:8443 --sni www.example.org --rootcert-file internal-ca.pem
certvigil check www.example.org --require-no-tls1 --require-no-tls1_1 --grade-below B"""


@app.command(
    "check",
    epilog=CHECK_EXAMPLES,
    cls=_PluginCommand,
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
)
def check_command(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Argument(metavar="HOST[:PORT]", help="The endpoint (port 443 by default)."),
    ] = None,
    host: Annotated[
        str | None, typer.Option("-H", "--host", help="The host (instead of HOST[:PORT]).")
    ] = None,
    port: Annotated[
        str | None, typer.Option("-p", "--port", help="The port, with -H (default 443).")
    ] = None,
    warning: Annotated[
        str,
        typer.Option("-w", "--warning", metavar="DAYS", help="WARNING within DAYS of expiry."),
    ] = "20",
    critical: Annotated[
        str,
        typer.Option("-c", "--critical", metavar="DAYS", help="CRITICAL within DAYS of expiry."),
    ] = "15",
    issuer: Annotated[
        str | None,
        typer.Option(
            "--issuer", metavar="REGEX", help="CRITICAL unless the leaf's issuer DN matches."
        ),
    ] = None,
    ocsp: Annotated[bool, typer.Option("--ocsp", help="Check revocation over OCSP.")] = False,
    crl: Annotated[bool, typer.Option("--crl", help="Check revocation over CRLs.")] = False,
    require_no_tls1: Annotated[
        bool, typer.Option("--require-no-tls1", help="CRITICAL when TLS 1.0 is accepted.")
    ] = False,
    require_no_tls1_1: Annotated[
        bool, typer.Option("--require-no-tls1_1", help="CRITICAL when TLS 1.1 is accepted.")
    ] = False,
    starttls: Annotated[
        str | None,
        typer.Option(
            "--starttls", metavar="PROTO", help="smtp, imap, pop3, ftp, ldap, xmpp, postgres."
        ),
    ] = None,
    sni: Annotated[
        str | None,
        typer.Option("--sni", metavar="NAME", help="Send NAME as SNI and match against it."),
    ] = None,
    rootcert_file: Annotated[
        str | None,
        typer.Option(
            "--rootcert-file", metavar="PEM", help="Also trust the CA certificates in PEM."
        ),
    ] = None,
    grade_below: Annotated[
        str | None,
        typer.Option(
            "--grade-below", metavar="LETTER", help="CRITICAL when the grade is below LETTER."
        ),
    ] = None,
    timeout: Annotated[
        str,
        typer.Option("-t", "--timeout", metavar="S", help="UNKNOWN when no verdict within S s."),
    ] = str(DEFAULT_TIMEOUT_S),
    debug: DebugOption = False,
) -> None:
    """Check one endpoint as a Nagios/Icinga plugin (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN)."""
    del debug  # read from argv by certvigil.cli.app.main
    try:
        if ctx.args:
            raise _Usage(f"unexpected argument {ctx.args[0]!r}")
        if target is None and host is None:
            raise _Usage("give HOST[:PORT] or -H HOST")
        if target is not None and host is not None:
            raise _Usage("give HOST[:PORT] or -H HOST, not both")
        spec = target if target is not None else str(host)
        if host is not None and port is not None:
            spec = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        elif port is not None:
            raise _Usage("-p/--port goes with -H/--host")
        thresholds = _thresholds(
            warning=warning,
            critical=critical,
            issuer=issuer,
            require_no_tls1=require_no_tls1,
            require_no_tls1_1=require_no_tls1_1,
            grade_below=grade_below,
        )
        timeout_s = _positive("-t/--timeout", timeout, allow_zero=False)
        endpoint = _target(spec, sni=sni, starttls=starttls)
        result = _check(
            endpoint,
            thresholds,
            timeout_s=timeout_s,
            ocsp=ocsp,
            crl=crl,
            rootcert=Path(rootcert_file) if rootcert_file is not None else None,
        )
    except _Usage as exc:
        result = unknown_result(f"usage: {exc}")
    except CertvigilError as exc:
        result = unknown_result(str(exc))
    sys.stdout.write(result.render())
    sys.stdout.flush()
    raise typer.Exit(int(result.state))
