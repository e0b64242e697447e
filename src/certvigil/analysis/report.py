"""Judge a chain (``certvigil cert FILE``) or one bare handshake: facts, chain, hostname.

:func:`analyse_chain_der` is the certificate part of ``analysis.judge.judge``, which a
scan calls once per endpoint on its whole observation (AIA issuers, revocation and
protocol probes included). :func:`analyse_endpoint` judges a handshake alone, with
issuers the caller fetched; :func:`issuer_urls_to_fetch` names, from such a report, the
AIA URLs to fetch (a scan plans them from the bytes instead:
``analysis.revocation_plan.plan_issuer_fetches``). Everything here is pure: the caller
passes ``now`` and the trust store.

Passing one ``now`` for a whole scan lets endpoints that serve the same chain share
one verification (see ``chain.judge_chain``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from certvigil.analysis.certificate import certificate_facts
from certvigil.analysis.chain import judge_chain
from certvigil.analysis.chain_size import chain_size_findings
from certvigil.analysis.codes import FindingCode
from certvigil.analysis.findings import (
    certificate_findings,
    chain_findings,
    hostname_findings,
    sort_findings,
    untrusted_causes,
)
from certvigil.analysis.hostname import HostnameMatch, match_hostname
from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
    Severity,
    worst,
)
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.trust import TrustStore
from certvigil.errors import CertificateLoadError
from certvigil.observed.handshake import ProbeFailure, TlsObservation

__all__ = ["ChainAnalysis", "analyse_chain_der", "analyse_endpoint", "issuer_urls_to_fetch"]

_DEFAULT_POLICY = AnalysisPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainAnalysis:
    """The judgement on a chain, without an endpoint (``certvigil cert FILE``).

    Attributes:
        evaluated_at_utc: The ``now`` the analysis used.
        expected_name: The name matched against the leaf, ``None`` when none was given.
        certificates: Facts for each certificate that parsed, in the given order.
        chain: The chain verdict, ``None`` when no certificate parsed.
        hostname: The hostname match, ``None`` without ``expected_name`` or a leaf.
        findings: Everything found, most severe first.
    """

    evaluated_at_utc: datetime
    expected_name: str | None = None
    certificates: tuple[CertificateFacts, ...] = ()
    chain: ChainReport | None = None
    hostname: HostnameMatch | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def verdict(self) -> Severity:
        """The worst finding's severity."""
        return worst([f.severity for f in self.findings])

    @property
    def hostname_matches(self) -> bool | None:
        """The leaf covers ``expected_name``; ``None`` when not checked."""
        return None if self.hostname is None else self.hostname.matches


def analyse_chain_der(
    chain_der: Sequence[bytes],
    *,
    now: datetime,
    trust: TrustStore,
    policy: AnalysisPolicy = _DEFAULT_POLICY,
    expected_name: str | None = None,
    fetched_issuers_der: Sequence[bytes] = (),
    has_ocsp_staple: bool | None = None,
    sort: bool = True,
) -> ChainAnalysis:
    """Judge a chain of DER certificates, leaf first, as a server would send it.

    Never raises for bad certificate bytes: a certificate that does not parse yields a
    ``malformed_certificate`` finding, and the rest is judged without it.

    Args:
        chain_der: The certificates, leaf first.
        now: Evaluation time (aware).
        trust: The anchors.
        policy: Thresholds and minimums.
        expected_name: The host name or IP to match the leaf against; ``None`` skips
            the hostname check.
        fetched_issuers_der: Issuers fetched from AIA CA Issuers URLs; certificates in
            it that do not parse are ignored.
        has_ocsp_staple: Whether an OCSP staple was sent; ``None`` when unknown.
        sort: Sort the findings most severe first; ``judge`` passes ``False`` and sorts
            once, when every part of the endpoint has been judged.

    Returns:
        The analysis.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    findings: list[Finding] = []
    if not chain_der:
        findings.append(
            Finding(
                code=FindingCode.NO_CERTIFICATE,
                severity=Severity.CRITICAL,
                message="No certificate was presented",
            )
        )
        return ChainAnalysis(
            evaluated_at_utc=now, expected_name=expected_name, findings=tuple(findings)
        )
    read: list[tuple[bytes, CertificateFacts]] = []  # digest and facts of each readable one
    ders: list[bytes] = []
    positions: list[int] = []  # served position of each readable certificate
    for index, der in enumerate(chain_der):
        try:
            read.append(certificate_facts(der))
        except CertificateLoadError as exc:
            findings.append(
                Finding(
                    code=FindingCode.MALFORMED_CERTIFICATE,
                    severity=Severity.CRITICAL,
                    message=f"Certificate {index} is not a certificate: {exc.reason}",
                    cert_index=index,
                )
            )
        else:
            ders.append(der)
            positions.append(index)
    facts = tuple(f for _, f in read)
    if not positions or positions[0] != 0:
        # Without a readable leaf there is nothing to match or verify.
        return ChainAnalysis(
            evaluated_at_utc=now,
            expected_name=expected_name,
            certificates=facts,
            findings=sort_findings(findings) if sort else tuple(findings),
        )
    digests = [digest for digest, _ in read]
    fetched = []
    for der in fetched_issuers_der:
        try:
            digests.append(certificate_facts(der)[0])
        except CertificateLoadError:
            continue  # an unreadable fetched issuer completes nothing
        fetched.append(der)
    verdict = judge_chain(ders, now=now, trust=trust, fetched_der=fetched, digests=digests)
    judged = certificate_findings(
        facts,
        now=now,
        policy=policy,
        path_indexes=verdict.path_served_indexes,
        is_public=verdict.anchor_is_public,
        has_ocsp_staple=has_ocsp_staple,
        trusted_ignoring_validity=verdict.report.trusted_ignoring_validity,
    )
    chain = verdict.report
    if not chain.is_trusted:
        chain = dataclasses.replace(chain, untrusted_causes=untrusted_causes(verdict, judged))
    judged += chain_findings(verdict, judged)
    if len(positions) != len(chain_der):
        # A malformed certificate was left out: point findings at served positions.
        judged = [
            f
            if f.cert_index is None
            else dataclasses.replace(f, cert_index=positions[f.cert_index])
            for f in judged
        ]
    findings += judged
    hostname = None
    if expected_name is not None:
        hostname = match_hostname(facts[0], expected_name)
        findings += hostname_findings(hostname, facts[0])
    return ChainAnalysis(
        evaluated_at_utc=now,
        expected_name=expected_name,
        certificates=facts,
        chain=chain,
        hostname=hostname,
        findings=sort_findings(findings) if sort else tuple(findings),
    )


def analyse_endpoint(
    result: TlsObservation | ProbeFailure,
    *,
    now: datetime,
    trust: TrustStore,
    policy: AnalysisPolicy = _DEFAULT_POLICY,
    fetched_issuers_der: Sequence[bytes] = (),
) -> EndpointReport:
    """Judge one probed endpoint.

    A probe failure gives a report that carries the failure and no findings (the
    failure is told by ``EndpointReport.is_failed``). Certificate bytes that do not
    parse give a ``malformed_certificate`` finding, never an exception.

    Args:
        result: What the probe saw.
        now: Evaluation time (aware); pass one value for a whole scan.
        trust: The anchors (built once per scan).
        policy: Thresholds and minimums.
        fetched_issuers_der: Issuers fetched from the URLs :func:`issuer_urls_to_fetch`
            returned for an earlier report on the same observation.

    Returns:
        The report; the hostname is matched against ``target.expected_name`` (the SNI
        override when given, else the host).
    """
    if isinstance(result, ProbeFailure):
        return EndpointReport(target=result.target, evaluated_at_utc=now, failure=result)
    analysis = analyse_chain_der(
        result.chain_der,
        now=now,
        trust=trust,
        policy=policy,
        expected_name=result.target.expected_name,
        fetched_issuers_der=fetched_issuers_der,
        has_ocsp_staple=result.ocsp_staple_der is not None,
    )
    return EndpointReport(
        target=result.target,
        evaluated_at_utc=now,
        observation=result,
        certificates=analysis.certificates,
        chain=analysis.chain,
        hostname_matches=analysis.hostname_matches,
        findings=sort_findings((*analysis.findings, *chain_size_findings(result.chain_der))),
    )


def issuer_urls_to_fetch(report: EndpointReport | ChainAnalysis) -> tuple[str, ...]:
    """The AIA CA Issuers URLs to fetch to complete an incomplete chain.

    Args:
        report: A report whose chain may lack an intermediate.

    Returns:
        The URLs (http only, as RFC 5280 says; usually one), empty when nothing is
        missing, the missing issuer was already fetched, or no URL is given. A fetched
        issuer may itself lack its issuer: judge again and ask again (three rounds
        suffice for any real chain).
    """
    chain = report.chain
    if chain is None or chain.is_trusted or chain.would_verify_with_fetched:
        return ()
    return tuple(
        u for u in chain.missing_issuer_urls if u.lower().startswith(("http://", "https://"))
    )
