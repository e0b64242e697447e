"""Turn a revocation report into findings with stable codes and severities; pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from certvigil.analysis.model import Finding, Severity
from certvigil.analysis.revocation_model import (
    CertificateRevocation,
    RevocationReport,
    RevocationStatus,
    StapleReport,
)
from certvigil.observed.revocation import RevocationMethod


def revocation_findings(report: RevocationReport) -> tuple[Finding, ...]:
    """The findings a revocation report gives rise to, most severe first.

    Codes: ``revoked`` (critical); ``must_staple_without_staple`` (critical: Firefox
    refuses the connection); ``no_revocation_info`` (warning for the leaf, info for
    intermediates); per method ``ocsp_responder_unreachable``, ``crl_unreachable``,
    ``ocsp_response_stale``, ``crl_stale``, ``ocsp_response_invalid``, ``crl_invalid``,
    ``ocsp_status_unknown`` and ``revocation_issuer_missing`` (warning, or info when
    another method established the certificate as good); for the staple
    ``ocsp_staple_invalid``, ``ocsp_staple_stale``, ``ocsp_staple_unknown`` (warning).

    Args:
        report: The output of ``judge_revocation``.

    Returns:
        The findings, each naming the certificate it concerns.
    """
    findings: list[Finding] = []
    for cert in report.certificates:
        findings.extend(_certificate_findings(cert))
    if report.staple is not None:
        findings.extend(_staple_findings(report.staple))
    return tuple(sorted(findings, key=lambda f: -f.severity.rank))


@dataclass(frozen=True, slots=True)
class _MethodFindingCode:
    code: str
    what: str


_METHOD_FINDINGS: dict[tuple[RevocationMethod, RevocationStatus], _MethodFindingCode] = {
    (RevocationMethod.OCSP, RevocationStatus.UNREACHABLE): _MethodFindingCode(
        "ocsp_responder_unreachable", "the OCSP responder could not be reached"
    ),
    (RevocationMethod.CRL, RevocationStatus.UNREACHABLE): _MethodFindingCode(
        "crl_unreachable", "the CRL could not be downloaded"
    ),
    (RevocationMethod.OCSP, RevocationStatus.STALE_RESPONSE): _MethodFindingCode(
        "ocsp_response_stale", "the OCSP response is stale"
    ),
    (RevocationMethod.CRL, RevocationStatus.STALE_RESPONSE): _MethodFindingCode(
        "crl_stale", "the CRL is stale"
    ),
    (RevocationMethod.OCSP, RevocationStatus.INVALID_RESPONSE): _MethodFindingCode(
        "ocsp_response_invalid", "the OCSP response is invalid"
    ),
    (RevocationMethod.CRL, RevocationStatus.INVALID_RESPONSE): _MethodFindingCode(
        "crl_invalid", "the CRL is invalid"
    ),
    (RevocationMethod.OCSP, RevocationStatus.UNKNOWN): _MethodFindingCode(
        "ocsp_status_unknown", "the OCSP responder does not know the certificate"
    ),
}


def _certificate_findings(cert: CertificateRevocation) -> list[Finding]:
    name = cert.subject or f"serial {cert.serial_hex}"
    findings: list[Finding] = []
    if cert.status is RevocationStatus.REVOKED:
        when = cert.revoked_at_utc.isoformat() if cert.revoked_at_utc else "an unknown time"
        reason = f" ({cert.revocation_reason})" if cert.revocation_reason else ""
        method = cert.decided_by.value if cert.decided_by else "unknown method"
        findings.append(
            Finding(
                code="revoked",
                severity=Severity.CRITICAL,
                message=f"{name} was revoked at {when}{reason}, according to {method}",
                cert_index=cert.cert_index,
            )
        )
        return findings
    if cert.status is RevocationStatus.NO_INFO:
        findings.append(
            Finding(
                code="no_revocation_info",
                severity=Severity.WARNING if cert.cert_index == 0 else Severity.INFO,
                message=f"{name} names no OCSP responder and no CRL distribution point",
                cert_index=cert.cert_index,
            )
        )
        return findings
    # Method troubles matter less once another method has established "good".
    severity = Severity.INFO if cert.status is RevocationStatus.GOOD else Severity.WARNING
    seen: set[str] = set()
    for result in cert.methods:
        code: _MethodFindingCode | None
        if result.status is RevocationStatus.UNVERIFIABLE:
            code = _MethodFindingCode(
                "revocation_issuer_missing", "its issuer is not available to verify the answer"
            )
        else:
            code = _METHOD_FINDINGS.get((result.method, result.status))
        if code is None or code.code in seen:
            continue
        seen.add(code.code)
        where = f" ({result.url})" if result.url else ""
        findings.append(
            Finding(
                code=code.code,
                severity=severity,
                message=f"{name}: {code.what}{where}: {result.detail}",
                cert_index=cert.cert_index,
            )
        )
    return findings


_STAPLE_FINDINGS = {
    RevocationStatus.INVALID_RESPONSE: "ocsp_staple_invalid",
    RevocationStatus.STALE_RESPONSE: "ocsp_staple_stale",
    RevocationStatus.UNKNOWN: "ocsp_staple_unknown",
}


def _staple_findings(staple: StapleReport) -> Sequence[Finding]:
    if staple.was_requested and not staple.is_present and staple.must_staple:
        return (
            Finding(
                code="must_staple_without_staple",
                severity=Severity.CRITICAL,
                message="the leaf demands OCSP stapling (must-staple); the server sent no staple",
                cert_index=0,
            ),
        )
    code = _STAPLE_FINDINGS.get(staple.status) if staple.status is not None else None
    if code is None:
        return ()
    return (
        Finding(
            code=code,
            severity=Severity.WARNING,
            message=f"the stapled OCSP response is not usable: {staple.detail}",
            cert_index=0,
        ),
    )
