"""The deep step of a scan: protocol and cipher probes, findings and grade for one report.

``scan.py`` starts :func:`probe_tls_config` as soon as the handshake has observed the
endpoint (so the probes run while the chain is completed over AIA and revocation is
checked) and folds the result in with :func:`apply_tls_config`; :func:`deepen_report`
does both in turn. The probes go to the address the handshake reached, with the scan's
time-outs, each connection drawing a slot from the scan's per-address (and per-subnet)
limiter; their findings join the report's, so the verdict, the table and the exit code
reflect them.
"""

from __future__ import annotations

import dataclasses

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.deep_assessment import assess_endpoint_report
from certvigil.analysis.model import EndpointReport, Finding, Severity
from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.probe.tls_config import ConnectionSlot, http_is_plausible, observe_tls_config


async def probe_tls_config(
    observation: TlsObservation,
    *,
    connect_timeout_s: float,
    handshake_timeout_s: float,
    max_connections: int,
    connection_slot: ConnectionSlot | None = None,
    starttls_timeout_s: float = 10.0,
) -> TlsConfigObservation | ProbeFailure:
    """Probe the protocols, suites and options of the endpoint ``observation`` reached.

    Args:
        observation: The endpoint's handshake (its target, address and ALPN).
        connect_timeout_s: Time-out of each TCP connect.
        handshake_timeout_s: Time-out for each server answer.
        max_connections: Connections open at once to the endpoint.
        connection_slot: Entered around each probe connection (the scan's limits).
        starttls_timeout_s: Limit on each probe connection's STARTTLS dialogue.

    Returns:
        What the probes saw, or why they could not run.
    """
    return await observe_tls_config(
        observation.target,
        address=observation.peer_address,
        connect_timeout_s=connect_timeout_s,
        handshake_timeout_s=handshake_timeout_s,
        max_connections=max_connections,
        check_http=http_is_plausible(observation.target.port, observation.alpn),
        connection_slot=connection_slot,
        starttls_timeout_s=starttls_timeout_s,
    )


def apply_tls_config(
    report: EndpointReport,
    result: TlsConfigObservation | ProbeFailure,
    *,
    revoked: bool | None = None,
) -> EndpointReport:
    """``report`` with the deep assessment of ``result`` (or a note saying why there is none).

    Args:
        report: The endpoint's report, revocation included when it was checked.
        result: What :func:`probe_tls_config` returned.
        revoked: The revocation verdict when known (a revoked chain grades F);
            ``None`` takes it from ``report.revocation`` when the scan checked it.

    Returns:
        The report with ``deep`` set and the TLS findings merged, most severe first.
    """
    if isinstance(result, ProbeFailure):
        note = Finding(
            code=FindingCode.TLS_CONFIG_NOT_ASSESSED,
            severity=Severity.INFO,
            message=f"protocols and ciphers not assessed: {result.kind}: {result.detail}",
        )
        return dataclasses.replace(report, findings=(*report.findings, note))
    if revoked is None and report.revocation is not None:
        revoked = report.revocation.is_revoked
    assessment = assess_endpoint_report(report, result, revoked=revoked)
    findings = sorted(
        (*report.findings, *assessment.tls_config.findings), key=lambda f: -f.severity.rank
    )
    return dataclasses.replace(report, deep=assessment, findings=tuple(findings))


async def deepen_report(
    report: EndpointReport,
    *,
    connect_timeout_s: float,
    handshake_timeout_s: float,
    max_connections: int,
    revoked: bool | None = None,
    connection_slot: ConnectionSlot | None = None,
    starttls_timeout_s: float = 10.0,
) -> EndpointReport:
    """``report`` with its deep assessment, or unchanged when there is nothing to probe.

    Args:
        report: The basic analysis of one endpoint.
        connect_timeout_s: Time-out of each TCP connect.
        handshake_timeout_s: Time-out for each server answer.
        max_connections: Connections open at once to the endpoint.
        revoked: The revocation verdict when known (a revoked chain grades F);
            ``None`` takes it from ``report.revocation`` when the scan checked it.
        connection_slot: Entered around each probe connection (the scan's
            per-address and per-subnet limits), on top of ``max_connections``.
        starttls_timeout_s: Limit on each probe connection's STARTTLS dialogue.

    Returns:
        The report with ``deep`` set and the TLS findings merged, most severe first.
        An endpoint that could not be observed comes back unchanged; one whose probes
        all failed gets a finding saying why it was not assessed.
    """
    if report.observation is None:
        return report
    result = await probe_tls_config(
        report.observation,
        connect_timeout_s=connect_timeout_s,
        handshake_timeout_s=handshake_timeout_s,
        max_connections=max_connections,
        connection_slot=connection_slot,
        starttls_timeout_s=starttls_timeout_s,
    )
    return apply_tls_config(report, result, revoked=revoked)
