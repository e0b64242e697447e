"""The deep TLS assessment of one endpoint: configuration findings, grade, Mozilla profiles."""

from __future__ import annotations

from dataclasses import dataclass

from certvigil.analysis.grade import (
    CertificateVerdicts,
    GradeReport,
    certificate_verdicts,
    grade_endpoint,
)
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.mozilla_profiles import ProfileCompliance, check_mozilla_profiles
from certvigil.analysis.tls_config import TlsConfigReport, judge_tls_config
from certvigil.observed.tls_config import TlsConfigObservation


@dataclass(frozen=True, slots=True, kw_only=True)
class DeepAssessment:
    """Everything the protocol and cipher assessment concluded about one endpoint.

    Attributes:
        observation: The raw protocol and cipher facts the judgement rests on.
        tls_config: Findings and summary facts on protocols, suites and options.
        grade: The SSL Labs-style grade with its rules.
        mozilla: Compliance with Mozilla's modern, intermediate and old profiles.
    """

    observation: TlsConfigObservation
    tls_config: TlsConfigReport
    grade: GradeReport
    mozilla: tuple[ProfileCompliance, ...]


def assess_tls(
    observation: TlsConfigObservation,
    verdicts: CertificateVerdicts,
    *,
    certificate_lifespan_days: int | None = None,
) -> DeepAssessment:
    """Judge an observation: findings, grade and Mozilla compliance.

    Args:
        observation: What ``observe_tls_config`` found.
        verdicts: The certificate verdicts (trust, name, expiry, revocation, key).
        certificate_lifespan_days: The leaf's validity period, for Mozilla's
            lifespan point; ``None`` skips it.

    Returns:
        The assessment.
    """
    config = judge_tls_config(observation)
    return DeepAssessment(
        observation=observation,
        tls_config=config,
        grade=grade_endpoint(observation, config, verdicts),
        mozilla=check_mozilla_profiles(
            observation, config, verdicts, certificate_lifespan_days=certificate_lifespan_days
        ),
    )


def assess_endpoint_report(
    report: EndpointReport, observation: TlsConfigObservation, *, revoked: bool | None = None
) -> DeepAssessment:
    """Judge an observation together with the scan's verdicts on the same endpoint.

    Args:
        report: The scan's judgement of the endpoint (certificate, chain, name).
        observation: The protocol and cipher facts of the same endpoint.
        revoked: The revocation verdict, ``None`` when not checked.

    Returns:
        The assessment.
    """

    leaf = report.leaf
    return assess_tls(
        observation,
        certificate_verdicts(report, revoked=revoked),
        certificate_lifespan_days=leaf.validity_days if leaf is not None else None,
    )
