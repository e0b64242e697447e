"""``certvigil grade HOST[:PORT]``: deep TLS assessment and SSL Labs-style grade of one endpoint.

One scan of the endpoint (certificate, chain, trust, name), its revocation status, then
the protocol and cipher probes; the grade, its rules, the findings and Mozilla profile
compliance go to stdout as a table or, with ``--json``, as one JSON document.

The target options (``-p``, ``--sni``, ``--starttls``), trust, time-outs, ``--deadline``
and retries are the ones ``scan`` has, declared once in ``certvigil.cli.options``.

Exit codes follow the rule every command follows (``certvigil.output.summary.Tally``),
from the findings of the endpoint (certificate, revocation and TLS configuration), not
from the letter: 0 nothing to act on, 1 warnings, 2 a critical finding, 3 when the
endpoint could not be assessed, 64 for a usage error.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from certvigil import __version__
from certvigil.analysis.codes import FindingCode
from certvigil.analysis.deep_assessment import DeepAssessment
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    CHECKS_PANEL,
    OUTPUT_PANEL,
    CaFilesOption,
    ConnectTimeoutOption,
    DeadlineOption,
    DebugOption,
    DefaultCaOption,
    HandshakeTimeoutOption,
    PerIpOption,
    PortsOption,
    RetriesOption,
    RetryTimeoutsOption,
    SniOption,
    StartTlsOption,
    SystemTrustOption,
    ThresholdsOption,
)
from certvigil.cli.scan_cmd import build_trust, policy_for, stderr_console
from certvigil.errors import TargetError, UsageError
from certvigil.output.plain_json import jsonable
from certvigil.output.safe_text import cell, visible
from certvigil.output.summary import Tally
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.parse import (
    ExpansionOptions,
    iter_argument_specs,
    iter_targets,
    normalise_hostname,
    parse_port_list,
)
from certvigil.targets.target import Target


def _one_target(text: str, expansion: ExpansionOptions) -> Target:
    errors: list[TargetError] = []
    targets = list(
        iter_targets(iter_argument_specs([text]), options=expansion, on_error=errors.append)
    )
    if errors:
        raise errors[0]
    if len(targets) != 1:
        raise UsageError(f'"{text}": grade takes one endpoint, not {len(targets)}')
    return targets[0]


def _revoked(report: EndpointReport) -> bool | None:
    """Revoked, not revoked (the leaf is good), or ``None`` when unknown or unchecked."""
    if report.revocation is None:
        return None
    if report.revocation.is_revoked:
        return True
    return False if report.revocation.leaf_status is RevocationStatus.GOOD else None


def _render(console: Console, report: EndpointReport, assessment: DeepAssessment) -> None:
    grade = assessment.grade
    config = assessment.tls_config
    observation = assessment.observation
    headline = cell(str(report.target), style="bold")
    headline.append("  grade ")
    headline.append(grade.grade, style="bold")
    if grade.grade_if_trusted is not None:
        # SSL Labs shows what a T or M server gets once its trust issue is fixed.
        headline.append(f" (if trusted: {grade.grade_if_trusted})")
    elif grade.grade != grade.grade_ignoring_certificate:
        headline.append(f" (configuration alone: {grade.grade_ignoring_certificate})")
    headline.append(
        f"  score {grade.score} (protocol {grade.protocol_score}, key exchange "
        f"{grade.key_exchange_score}, cipher {grade.cipher_score})"
    )
    console.print(headline)
    if grade.rules:
        rules = Table("grade", "rule", "reason", title="What shaped the grade")
        for rule in grade.rules:
            rules.add_row(rule.grade, cell(rule.code), cell(rule.reason))
        console.print(rules)
    suites = Table("protocol", "server order", "accepted suites", title="Protocols and suites")
    for entry in config.suites:
        order = {True: "server", False: "client", None: "-"}[entry.server_enforces_order]
        suites.add_row(
            str(entry.protocol), order, Text("\n".join(visible(s) for s in entry.cipher_suites))
        )
    console.print(suites)
    facts = Table("fact", "value", title="Key exchange and options")
    facts.add_row("forward secrecy", config.forward_secrecy)
    facts.add_row("AEAD", "yes" if config.supports_aead else "no")
    facts.add_row("groups", cell(", ".join(config.key_exchange_groups) or "-"))
    facts.add_row("DH prime", f"{config.dh_prime_bits} bits" if config.dh_prime_bits else "-")
    for label, flag in (
        ("TLS_FALLBACK_SCSV", config.fallback_scsv),
        ("secure renegotiation", config.secure_renegotiation),
        ("compression", config.compression),
    ):
        facts.add_row(label, {True: "yes", False: "no", None: "n/a"}[flag])
    facts.add_row("HSTS max-age", f"{config.hsts_max_age_s} s" if config.hsts_max_age_s else "-")
    facts.add_row(
        "probe", f"{observation.handshake_count} connections in {observation.elapsed_s:.2f} s"
    )
    console.print(facts)
    findings = Table("severity", "code", "finding", title="Findings")
    for finding in report.findings:
        findings.add_row(finding.severity.value, cell(finding.code), cell(finding.message))
    console.print(findings)
    mozilla = Table("profile", "compliant", "failing points", title="Mozilla server-side TLS")
    for item in assessment.mozilla:
        mozilla.add_row(
            f"{item.profile.value} ({item.guidelines_version})",
            "yes" if item.is_compliant else "no",
            Text("\n".join(visible(f) for f in item.failures)),
        )
    console.print(mozilla)


GRADE_EXAMPLES = """[bold]Examples[/bold]
certvigil grade example.com
certvigil grade 192.0.2.10:8443 --sni www.example.com --json
certvigil grade intranet.example --ca-file corp-root.pem --no-revocation"""


@app.command("grade", epilog=GRADE_EXAMPLES)
def grade_command(
    target: Annotated[
        str, typer.Argument(metavar="HOST[:PORT]", help="The endpoint (port 443 by default).")
    ],
    ports: PortsOption = None,
    sni: SniOption = None,
    starttls: StartTlsOption = None,
    ca_files: CaFilesOption = None,
    system_trust: SystemTrustOption = False,
    default_ca: DefaultCaOption = True,
    thresholds: ThresholdsOption = None,
    revocation: Annotated[
        bool,
        typer.Option(
            "--revocation/--no-revocation",
            help="Check OCSP/CRL (a revoked leaf grades F).",
            rich_help_panel=CHECKS_PANEL,
        ),
    ] = True,
    connect_timeout: ConnectTimeoutOption = 5.0,
    handshake_timeout: HandshakeTimeoutOption = 5.0,
    deadline: DeadlineOption = 30.0,
    retries: RetriesOption = 1,
    retry_timeouts: RetryTimeoutsOption = False,
    per_ip: PerIpOption = 8,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Write one JSON document.", rich_help_panel=OUTPUT_PANEL),
    ] = False,
    debug: DebugOption = False,
) -> None:
    """Grade one endpoint's TLS setup like SSL Labs, with every rule explained."""
    del debug  # read from argv by certvigil.cli.app.main
    if connect_timeout <= 0 or handshake_timeout <= 0 or deadline <= 0:
        raise UsageError("--connect-timeout, --handshake-timeout and --deadline must be positive")
    try:
        default_ports = parse_port_list(ports) if ports is not None else (443,)
    except ValueError as exc:
        raise UsageError(f'-p "{ports}": {exc}') from exc
    try:
        sni_name = normalise_hostname(sni) if sni is not None else None
    except ValueError as exc:
        raise UsageError(f'--sni "{sni}": {exc}') from exc
    endpoint = _one_target(
        target, ExpansionOptions(default_ports=default_ports, sni=sni_name, starttls=starttls)
    )
    trust = build_trust(ca_files or (), system_trust=system_trust, default_ca=default_ca)
    console = stderr_console()
    # The same path as `scan --checks grade`: revocation (with the handshake's staple
    # and the scan's AIA-fetched issuers and anchors) then the deep probes.
    try:
        policy = policy_for(thresholds)
        options = ScanOptions(
            per_ip_concurrency=per_ip,
            connect_timeout_s=connect_timeout,
            handshake_timeout_s=handshake_timeout,
            starttls_timeout_s=handshake_timeout,
            deadline_s=deadline,
            retries=retries,
            retry_timeouts=retry_timeouts,
            policy=policy,
            deep=True,
            revocation=revocation,
            revocation_options=RevocationOptions(timeout_s=connect_timeout),
        )
    except ValueError as exc:
        raise UsageError(f"options: {exc}") from exc
    report = scan([endpoint], options=options, trust=trust)[0]
    if report.observation is None:
        failure = report.failure
        detail = f"{failure.kind}: {failure.detail}" if failure else "not observed"
        console.print(f"error: {visible(str(endpoint))}: {visible(detail)}", markup=False)
        raise typer.Exit(int(ExitCode.UNKNOWN))
    revoked = _revoked(report)
    assessment = report.deep
    if assessment is None:
        why = [f.message for f in report.findings if f.code == FindingCode.TLS_CONFIG_NOT_ASSESSED]
        console.print(
            f"error: {visible(str(endpoint))}: {visible(why[0]) if why else 'not assessed'}",
            markup=False,
        )
        raise typer.Exit(int(ExitCode.UNKNOWN))
    if as_json:
        document = {
            "command": "grade",
            "version": __version__,
            "generated_at_utc": datetime.now(UTC).isoformat(),
            "target": str(endpoint),
            "revoked": revoked,
            "findings": jsonable(report.findings),
            "assessment": jsonable(assessment),
        }
        json.dump(document, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _render(Console(highlight=False, soft_wrap=False), report, assessment)
    tally = Tally()
    tally.add(report)
    raise typer.Exit(int(tally.exit_code))
