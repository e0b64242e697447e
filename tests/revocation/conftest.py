"""Fixtures for revocation tests: a throwaway PKI and a loopback OCSP/CRL server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from certvigil.demo.pki import ThrowawayPki
from tests.revocation.helpers import utc_now
from tests.support.ocsp_responder import OcspResponder, RevocationServer


@pytest.fixture(scope="session")
def pki() -> ThrowawayPki:
    """A root and an intermediate shared by the revocation tests."""
    return ThrowawayPki.create(now_utc=utc_now())


@pytest.fixture
def server(pki: ThrowawayPki) -> Iterator[RevocationServer]:
    """A loopback OCSP responder (for the intermediate's leaves) and CRL publisher."""
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=utc_now)
    with RevocationServer(responder=responder) as running:
        yield running
