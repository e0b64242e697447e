"""Judge revocation from fetched OCSP responses, CRLs and staples; no I/O, no clock.

The entry points are ``judge_revocation`` (observation + ``now`` → ``RevocationReport``)
and ``revocation_findings`` (report → findings, re-exported from
``certvigil.analysis.revocation_findings``). Single answers are judged by
``certvigil.analysis.revocation_checks`` (``check_ocsp_response``, ``check_crl``), which
also documents freshness and what is out of scope.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from certvigil.analysis.certificate import ParsedCertificate
from certvigil.analysis.revocation_checks import (
    check_crl,
    check_ocsp_response,
    ocsp_response_matches,
)
from certvigil.analysis.revocation_findings import revocation_findings
from certvigil.analysis.revocation_model import (
    CertificateRevocation,
    MethodResult,
    RevocationReport,
    RevocationStatus,
    StapleReport,
)
from certvigil.analysis.revocation_plan import readable
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    FetchFailureKind,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)

__all__ = ["judge_revocation", "revocation_findings"]

_CRL_DISTRIBUTION_POINTS = ExtensionOID.CRL_DISTRIBUTION_POINTS.dotted_string

_OPEN_PRECEDENCE = (
    RevocationStatus.UNKNOWN,
    RevocationStatus.STALE_RESPONSE,
    RevocationStatus.INVALID_RESPONSE,
    RevocationStatus.UNREACHABLE,
    RevocationStatus.UNVERIFIABLE,
    RevocationStatus.NOT_ALLOWED,
)
"""When no method decided good or revoked, the combined status is the first of these
that some method reported: the most informative open state wins."""


def judge_revocation(obs: RevocationObservation, *, now: datetime) -> RevocationReport:
    """Judge every fetched answer and combine them per certificate.

    Combining rule, per certificate: a ``REVOKED`` from any method whose signature
    verified wins; otherwise ``GOOD`` from at least one verified, fresh method;
    otherwise the most informative open state (see ``_OPEN_PRECEDENCE``). Unreachable
    responders and missing information never read as good.

    Args:
        obs: What ``certvigil.probe.revocation.check_revocation`` fetched.
        now: The evaluation time (aware UTC).

    Returns:
        The report, one ``CertificateRevocation`` per observed certificate.
    """
    verdicts: list[CertificateRevocation] = []
    staple: StapleReport | None = None
    for cert_obs in obs.certificates:
        parsed = readable(cert_obs.certificate_der)
        if parsed is None:
            # Not from check_revocation, which leaves such certificates out; a stored
            # or hand-made observation may still hold one.
            verdicts.append(_unreadable(cert_obs.cert_index))
            continue
        issuer = readable(cert_obs.issuer_der) if cert_obs.issuer_der is not None else None
        cert = parsed.certificate
        issuer_cert = issuer.certificate if issuer is not None else None
        results = [_judge_fetch(f, cert, issuer_cert, now) for f in cert_obs.fetches]
        if cert_obs.cert_index == 0:
            staple, staple_result = _judge_staple(obs, parsed, issuer_cert, now)
            if staple_result is not None:
                results.append(staple_result)
        if not results:
            results.append(_without_fetches(cert_obs, parsed, issuer_cert))
        verdicts.append(_combine(cert_obs.cert_index, parsed, tuple(results)))
    return RevocationReport(evaluated_at_utc=now, certificates=tuple(verdicts), staple=staple)


def _judge_fetch(
    fetch: RevocationFetch,
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    now: datetime,
) -> MethodResult:
    if fetch.failure is not None or fetch.response_der is None:
        failure = fetch.failure
        kind = failure.kind if failure is not None else FetchFailureKind.MALFORMED
        detail = failure.detail if failure is not None else "no response"
        status = (
            RevocationStatus.INVALID_RESPONSE
            if kind is FetchFailureKind.MALFORMED
            else RevocationStatus.UNREACHABLE
        )
        if kind is FetchFailureKind.NOT_ALLOWED:
            # The detail already reads "not checked: <url> outside the allow-list".
            return MethodResult(
                method=fetch.method,
                status=RevocationStatus.NOT_ALLOWED,
                url=fetch.url,
                detail=detail,
            )
        return MethodResult(
            method=fetch.method, status=status, url=fetch.url, detail=f"{kind.value}: {detail}"
        )
    if issuer is None:
        return MethodResult(
            method=fetch.method,
            status=RevocationStatus.UNVERIFIABLE,
            url=fetch.url,
            detail="the issuer certificate is not available, so the answer cannot be verified",
        )
    if fetch.method is RevocationMethod.CRL:
        return check_crl(fetch.response_der, cert=cert, issuer=issuer, now=now, url=fetch.url)
    return check_ocsp_response(
        fetch.response_der, cert=cert, issuer=issuer, now=now, method=fetch.method, url=fetch.url
    )


def _unreadable(cert_index: int) -> CertificateRevocation:
    detail = "the certificate cannot be read, so its revocation cannot be checked"
    return CertificateRevocation(
        cert_index=cert_index,
        subject="",
        serial_hex="",
        status=RevocationStatus.UNVERIFIABLE,
        methods=(
            MethodResult(
                method=RevocationMethod.CRL, status=RevocationStatus.UNVERIFIABLE, detail=detail
            ),
        ),
    )


def _judge_staple(
    obs: RevocationObservation,
    parsed_leaf: ParsedCertificate,
    issuer: x509.Certificate | None,
    now: datetime,
) -> tuple[StapleReport, MethodResult | None]:
    leaf = parsed_leaf.certificate
    must_staple = parsed_leaf.facts.must_staple
    if obs.staple_der is None:
        if not obs.staple_requested:
            detail = "no staple was asked for"
        else:
            detail = "the server sent no OCSP staple"
        report = StapleReport(
            was_requested=obs.staple_requested,
            is_present=False,
            must_staple=must_staple,
            detail=detail,
        )
        return report, None
    if issuer is None:
        result = MethodResult(
            method=RevocationMethod.OCSP_STAPLE,
            status=RevocationStatus.UNVERIFIABLE,
            detail="the issuer certificate is not available, so the staple cannot be verified",
        )
        is_for_leaf: bool | None = None
    else:
        result = check_ocsp_response(
            obs.staple_der,
            cert=leaf,
            issuer=issuer,
            now=now,
            method=RevocationMethod.OCSP_STAPLE,
        )
        is_for_leaf = ocsp_response_matches(obs.staple_der, leaf, issuer)
    report = StapleReport(
        was_requested=True,
        is_present=True,
        status=result.status,
        is_for_leaf=is_for_leaf,
        must_staple=must_staple,
        detail=result.detail,
    )
    return report, result


def _without_fetches(
    cert_obs: CertificateRevocationObservation,
    cert: ParsedCertificate,
    issuer: x509.Certificate | None,
) -> MethodResult:
    """Why nothing was fetched for a certificate, as a method result."""
    names_ocsp = bool(cert.facts.ocsp_urls)
    if cert_obs.ocsp_skipped:
        return MethodResult(
            method=RevocationMethod.OCSP,
            status=RevocationStatus.NOT_CHECKED,
            detail="only an OCSP responder is named, and OCSP was not asked for this certificate",
        )
    if names_ocsp and issuer is None:
        return MethodResult(
            method=RevocationMethod.OCSP,
            status=RevocationStatus.UNVERIFIABLE,
            detail="an OCSP responder is named, but without the issuer no request can be built",
        )
    if names_ocsp:
        return MethodResult(
            method=RevocationMethod.OCSP,
            status=RevocationStatus.NOT_CHECKED,
            detail="an OCSP responder is named, but OCSP checking was turned off",
        )
    if _CRL_DISTRIBUTION_POINTS in (cert.extension_oids or ()):
        return MethodResult(
            method=RevocationMethod.CRL,
            status=RevocationStatus.NOT_CHECKED,
            detail="a CRL distribution point is named, but CRL checking was turned off",
        )
    return MethodResult(
        method=RevocationMethod.CRL,
        status=RevocationStatus.NO_INFO,
        detail="no OCSP responder, no CRL distribution point and no staple",
    )


def _combine(
    cert_index: int,
    parsed: ParsedCertificate,
    results: tuple[MethodResult, ...],
) -> CertificateRevocation:
    deciding: MethodResult | None = None
    for wanted in (
        RevocationStatus.REVOKED,
        RevocationStatus.GOOD,
        *_OPEN_PRECEDENCE,
        RevocationStatus.NOT_CHECKED,
        RevocationStatus.NO_INFO,
    ):
        deciding = next((r for r in results if r.status is wanted), None)
        if deciding is not None:
            break
    return CertificateRevocation(
        cert_index=cert_index,
        subject=parsed.facts.subject,
        serial_hex=format(parsed.serial_number, "x"),
        status=deciding.status if deciding is not None else RevocationStatus.NO_INFO,
        decided_by=(
            deciding.method
            if deciding is not None and deciding.status is not RevocationStatus.NO_INFO
            else None
        ),
        revoked_at_utc=deciding.revoked_at_utc if deciding is not None else None,
        revocation_reason=deciding.revocation_reason if deciding is not None else None,
        methods=tuple(r for r in results if r.status is not RevocationStatus.NO_INFO),
    )
