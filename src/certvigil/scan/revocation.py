"""The revocation step of a scan: check one report's chain and fold the verdict into it.

``scan.py`` (``--checks revocation``, ``--deep``) and ``certvigil grade`` both call
:func:`check_report_revocation`, with one ``httpx.AsyncClient`` and one ``CrlCache``
for the whole run, so a CRL is downloaded once for every endpoint under its issuer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime

import httpx
from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.analysis.der import tbs_names
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.revocation import judge_revocation
from certvigil.analysis.revocation_findings import revocation_findings
from certvigil.analysis.trust import TrustStore
from certvigil.probe.crl_fetch import CrlCache
from certvigil.probe.revocation import RevocationOptions, check_revocation


def candidate_issuers_der(
    chain_der: Sequence[bytes], *, trust: TrustStore, fetched_der: Sequence[bytes] = ()
) -> tuple[bytes, ...]:
    """Issuers to look in beyond the served chain: AIA-fetched ones, then anchors.

    ``check_revocation`` finds each certificate's issuer by name and signature among
    the served chain and these; an OCSP request for a certificate issued directly by a
    root needs the root, which servers rarely send.

    Args:
        chain_der: The served certificates, leaf first.
        trust: The scan's anchors.
        fetched_der: Intermediates fetched from AIA CA-issuers URLs.

    Returns:
        ``fetched_der`` followed by every anchor named as issuer by a served or
        fetched certificate, without duplicates.
    """
    found: list[bytes] = list(dict.fromkeys(fetched_der))
    for der in (*chain_der, *fetched_der):
        try:
            issuer_name, _ = tbs_names(der)
        except ValueError:
            continue
        for anchor in trust.anchors_named(issuer_name):
            anchor_der = anchor.public_bytes(Encoding.DER)
            if anchor_der not in found:
                found.append(anchor_der)
    return tuple(found)


# Revocation findings that repeat a cause the basic analysis already names: the report
# says each cause once (a must-staple leaf without a staple is one finding, not two).
_ALREADY_SAID_BY: dict[str, frozenset[str]] = {
    "must_staple_without_staple": frozenset({"must_staple_not_stapled"}),
}


async def check_report_revocation(
    report: EndpointReport,
    *,
    http: httpx.AsyncClient,
    crl_cache: CrlCache,
    options: RevocationOptions,
    trust: TrustStore,
    clock: Callable[[], datetime],
    fetched_der: Sequence[bytes] = (),
) -> EndpointReport:
    """``report`` with its revocation verdict and findings, or unchanged when unobserved.

    The served chain is checked over OCSP and CRL, and the staple captured in the same
    handshake (``TlsObservation.ocsp_staple_der``) is judged. Each certificate's verdict
    names the method that decided it (docs/revocation.md).

    Args:
        report: The basic analysis of one endpoint.
        http: The HTTP client shared by the scan (the caller closes it).
        crl_cache: The CRL cache shared by the scan.
        options: What to fetch and the limits.
        trust: The scan's anchors (issuers of certificates a root signed directly).
        clock: Current time (aware UTC).
        fetched_der: Intermediates the scan fetched from AIA URLs for this endpoint.

    Returns:
        The report with ``revocation`` set and the revocation findings merged,
        most severe first; a revocation finding that repeats a finding the report has
        (``must_staple_without_staple`` after ``must_staple_not_stapled``) is left out.
    """
    observation = report.observation
    if observation is None or not observation.chain_der:
        return report
    found = await check_revocation(
        observation.chain_der,
        http=http,
        crl_cache=crl_cache,
        clock=clock,
        options=options,
        target=observation.target,
        extra_issuers_der=candidate_issuers_der(
            observation.chain_der, trust=trust, fetched_der=fetched_der
        ),
        staple_der=observation.ocsp_staple_der,
        # The handshake probe always asks for a staple (probe/tls.py).
        staple_requested=True,
    )
    verdict = judge_revocation(found, now=clock())
    said = {f.code for f in report.findings}
    new = [
        f
        for f in revocation_findings(verdict)
        if not _ALREADY_SAID_BY.get(f.code, frozenset()) & said
    ]
    findings = sorted((*report.findings, *new), key=lambda f: -f.severity.rank)
    return dataclasses.replace(report, revocation=verdict, findings=tuple(findings))
