"""Shared fixtures for analysis tests: a pinned clock, a throwaway PKI, real test data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.files.certificates import load_certificate_file
from certvigil.observed.handshake import TlsObservation
from certvigil.targets.target import Target

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CERTS = Path(__file__).resolve().parent.parent / "data" / "certs"


def load(relative: str) -> tuple[bytes, ...]:
    """The DER certificates of a test data file under ``tests/data/certs``."""
    return load_certificate_file(CERTS / relative)


def observation(
    chain_der: Sequence[bytes],
    *,
    host: str = "www.example.test",
    sni: str | None = None,
    staple: bytes | None = None,
) -> TlsObservation:
    """A recorded handshake that served ``chain_der``, built without a socket."""
    return TlsObservation(
        target=Target(host=host, port=443, sni=sni),
        peer_address="127.0.0.1",
        observed_at_utc=NOW,
        chain_der=tuple(chain_der),
        protocol="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.002,
        ocsp_staple_der=staple,
    )


@pytest.fixture(scope="session")
def pki() -> ThrowawayPki:
    """A root and intermediate valid around ``NOW``; the intermediate names AIA URLs."""
    return ThrowawayPki.create(
        now_utc=NOW,
        intermediate_ca_issuer_urls=("http://127.0.0.1:8080/root.der",),
    )


@pytest.fixture(scope="session")
def trust(pki: ThrowawayPki) -> TrustStore:
    """A trust store holding only the throwaway root."""
    return TrustStore.from_certificates([pki.root.certificate], source="test root")
