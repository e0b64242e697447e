"""Turn a revocation report into findings with stable codes and severities; pure."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from certvigil.analysis.codes import FindingCode
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
    ``ocsp_status_unknown``, ``revocation_issuer_missing`` and ``fetch_not_allowed``
    (one per refused URL; warning, or info when another method established the
    certificate as good); for the staple
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
        FindingCode.OCSP_RESPONDER_UNREACHABLE, "the OCSP responder could not be reached"
    ),
    (RevocationMethod.CRL, RevocationStatus.UNREACHABLE): _MethodFindingCode(
        FindingCode.CRL_UNREACHABLE, "the CRL could not be downloaded"
    ),
    (RevocationMethod.OCSP, RevocationStatus.STALE_RESPONSE): _MethodFindingCode(
        FindingCode.OCSP_RESPONSE_STALE, "the OCSP response is stale"
    ),
    (RevocationMethod.CRL, RevocationStatus.STALE_RESPONSE): _MethodFindingCode(
        FindingCode.CRL_STALE, "the CRL is stale"
    ),
    (RevocationMethod.OCSP, RevocationStatus.INVALID_RESPONSE): _MethodFindingCode(
        FindingCode.OCSP_RESPONSE_INVALID, "the OCSP response is invalid"
    ),
    (RevocationMethod.CRL, RevocationStatus.INVALID_RESPONSE): _MethodFindingCode(
        FindingCode.CRL_INVALID, "the CRL is invalid"
    ),
    (RevocationMethod.OCSP, RevocationStatus.UNKNOWN): _MethodFindingCode(
        FindingCode.OCSP_STATUS_UNKNOWN, "the OCSP responder does not know the certificate"
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
                code=FindingCode.REVOKED,
                severity=Severity.CRITICAL,
                message=f"{name} was revoked at {when}{reason}, according to {method}",
                cert_index=cert.cert_index,
            )
        )
        return findings
    if cert.status is RevocationStatus.NO_INFO:
        findings.append(
            Finding(
                code=FindingCode.NO_REVOCATION_INFO,
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
                FindingCode.REVOCATION_ISSUER_MISSING,
                "its issuer is not available to verify the answer",
            )
        elif result.status is RevocationStatus.NOT_ALLOWED:
            findings.append(
                Finding(
                    code=FindingCode.FETCH_NOT_ALLOWED,
                    severity=severity,
                    message=f"{name}: {result.method.value} {result.detail}",
                    cert_index=cert.cert_index,
                )
            )
            continue
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
    RevocationStatus.INVALID_RESPONSE: FindingCode.OCSP_STAPLE_INVALID,
    RevocationStatus.STALE_RESPONSE: FindingCode.OCSP_STAPLE_STALE,
    RevocationStatus.UNKNOWN: FindingCode.OCSP_STAPLE_UNKNOWN,
}


def _staple_findings(staple: StapleReport) -> Sequence[Finding]:
    if staple.was_requested and not staple.is_present and staple.must_staple:
        return (
            Finding(
                code=FindingCode.MUST_STAPLE_WITHOUT_STAPLE,
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
