"""Judge one endpoint observation, whole, in one pass: the report every command shows; pure.

``judge(observation, now, trust, policy)`` reads what the probes saw (handshake, AIA
issuers, revocation fetches, protocol probes: ``certvigil.observed.endpoint``) and
returns the ``EndpointReport``: certificate facts, chain, hostname, revocation, TLS
configuration, grade and every finding, sorted once, most severe first. A fresh scan
calls it once per endpoint; ``certvigil rejudge`` calls it again on a stored
observation with today's ``now``, trust store and policy, without the network.

Each cause is said once: a must-staple leaf without a staple is
``must_staple_not_stapled`` from the certificate checks, and the revocation check's
``must_staple_without_staple`` for the same cause is left out.
"""

from __future__ import annotations

from datetime import datetime

from certvigil.analysis.chain_size import chain_size_findings
from certvigil.analysis.codes import FindingCode
from certvigil.analysis.deep_assessment import DeepAssessment, assess_tls
from certvigil.analysis.findings import sort_findings
from certvigil.analysis.grade import verdicts_from
from certvigil.analysis.model import EndpointReport, Finding, Severity
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.revocation import judge_revocation
from certvigil.analysis.revocation_findings import revocation_findings
from certvigil.analysis.trust import TrustStore
from certvigil.observed.endpoint import EndpointObservation, ObservedStep
from certvigil.observed.handshake import ProbeFailure

__all__ = ["judge"]

_DEFAULT_POLICY = AnalysisPolicy()

# Revocation findings that repeat a cause the certificate checks already name.
_ALREADY_SAID_BY: dict[str, frozenset[str]] = {
    FindingCode.MUST_STAPLE_WITHOUT_STAPLE: frozenset({FindingCode.MUST_STAPLE_NOT_STAPLED}),
}


def judge(
    observation: EndpointObservation,
    now: datetime,
    trust: TrustStore,
    policy: AnalysisPolicy = _DEFAULT_POLICY,
) -> EndpointReport:
    """The whole judgement on one observed endpoint.

    Never raises for what a server sent: unreadable certificates, answers and probe
    results become findings.

    Args:
        observation: Everything the probes saw.
        now: The evaluation time (aware); a scan passes one value for many endpoints so
            that endpoints serving the same chain share one verification.
        trust: The anchors.
        policy: Thresholds and minimums.

    Returns:
        The report, with ``observed`` set to ``observation``. An endpoint whose
        handshake failed gets a report that carries the failure and no findings.

    Raises:
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    handshake = observation.handshake
    if isinstance(handshake, ProbeFailure):
        return EndpointReport(
            target=observation.target,
            evaluated_at_utc=now,
            failure=handshake,
            observed=observation,
        )
    chain = analyse_chain_der(
        handshake.chain_der,
        now=now,
        trust=trust,
        policy=policy,
        expected_name=handshake.target.expected_name,
        fetched_issuers_der=observation.fetched_issuers_der,
        has_ocsp_staple=handshake.ocsp_staple_der is not None,
        sort=False,
    )
    findings: list[Finding] = [*chain.findings, *chain_size_findings(handshake.chain_der)]
    revocation = None
    if observation.revocation is not None:
        revocation = judge_revocation(observation.revocation, now=now)
        said = {f.code for f in findings}
        findings += [
            f
            for f in revocation_findings(revocation)
            if not _ALREADY_SAID_BY.get(f.code, frozenset()) & said
        ]
    deep: DeepAssessment | None = None
    tls_config = observation.tls_config
    if isinstance(tls_config, ProbeFailure):
        findings.append(
            Finding(
                code=FindingCode.TLS_CONFIG_NOT_ASSESSED,
                severity=Severity.INFO,
                message=(
                    f"protocols and ciphers not assessed: {tls_config.kind}: {tls_config.detail}"
                ),
            )
        )
    elif tls_config is not None:
        leaf = chain.certificates[0] if chain.certificates else None
        verdicts = verdicts_from(
            leaf=leaf,
            chain=chain.chain,
            hostname_matches=chain.hostname_matches,
            now=now,
            revoked=revocation.is_revoked if revocation is not None else None,
        )
        deep = assess_tls(
            tls_config,
            verdicts,
            certificate_lifespan_days=leaf.validity_days if leaf is not None else None,
        )
        findings += deep.tls_config.findings
    findings += _cut_notes(observation)
    findings += [
        Finding(
            code=FindingCode.FETCH_NOT_ALLOWED,
            severity=Severity.WARNING,
            message=f"AIA issuer {fetch.error}",
        )
        for fetch in observation.issuer_fetches
        if fetch.was_not_allowed
    ]
    return EndpointReport(
        target=observation.target,
        evaluated_at_utc=now,
        observation=handshake,
        certificates=chain.certificates,
        chain=chain.chain,
        hostname_matches=chain.hostname_matches,
        findings=sort_findings(findings),
        revocation=revocation,
        deep=deep,
        observed=observation,
    )


def _cut_notes(observation: EndpointObservation) -> list[Finding]:
    """A finding for each step the endpoint's deadline cut short."""
    deadline = f"{observation.deadline_s:g} s" if observation.deadline_s is not None else "?"
    return [
        Finding(
            # The protocol step keeps the code it has for every other reason it was not done.
            code=FindingCode.TLS_CONFIG_NOT_ASSESSED
            if step is ObservedStep.TLS_CONFIG
            else FindingCode.DEADLINE_REACHED,
            severity=Severity.INFO,
            message=f"{step.description} not finished within the endpoint's deadline of "
            f"{deadline} (--deadline)",
        )
        for step in observation.cut_steps
    ]
