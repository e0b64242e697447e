"""The revocation step of a scan: fetch OCSP answers and CRLs for one observed chain.

The scanner (``--checks revocation``, ``--deep``, ``certvigil grade``) calls
:func:`fetch_revocation` with one ``httpx.AsyncClient`` and one ``CrlCache`` for the
whole run, so a CRL is downloaded once for every endpoint under its issuer; the result
becomes the observation's ``revocation``, judged with the rest by
``analysis.judge.judge``. What to fetch is planned from the bytes by
``analysis.revocation_plan``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import httpx

from certvigil.analysis.revocation_plan import candidate_issuers_der
from certvigil.analysis.trust import TrustStore
from certvigil.observed.handshake import TlsObservation
from certvigil.observed.revocation import RevocationObservation
from certvigil.probe.crl_fetch import CrlCache
from certvigil.probe.revocation import RevocationOptions, check_revocation

__all__ = ["fetch_revocation"]


async def fetch_revocation(
    handshake: TlsObservation,
    *,
    http: httpx.AsyncClient,
    crl_cache: CrlCache,
    options: RevocationOptions,
    trust: TrustStore,
    clock: Callable[[], datetime],
    fetched_der: Sequence[bytes] = (),
) -> RevocationObservation:
    """The OCSP and CRL fetches for a served chain, with the staple of the same handshake.

    Args:
        handshake: The endpoint's handshake (its chain and stapled OCSP response).
        http: The HTTP client shared by the scan (the caller closes it).
        crl_cache: The CRL cache shared by the scan.
        options: What to fetch and the limits.
        trust: The scan's anchors (issuers of certificates a root signed directly).
        clock: Current time (aware UTC).
        fetched_der: Intermediates the scan fetched from AIA URLs for this endpoint.

    Returns:
        What was fetched (docs/revocation.md says how it is judged).
    """
    return await check_revocation(
        handshake.chain_der,
        http=http,
        crl_cache=crl_cache,
        clock=clock,
        options=options,
        target=handshake.target,
        extra_issuers_der=candidate_issuers_der(
            handshake.chain_der, trust=trust, fetched_der=fetched_der
        ),
        staple_der=handshake.ocsp_staple_der,
        # The handshake probe always asks for a staple (probe/tls.py).
        staple_requested=True,
    )
