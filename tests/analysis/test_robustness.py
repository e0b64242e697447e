"""Damaged certificate bytes never escape as anything but a finding or CertificateLoadError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from certvigil.analysis.certificate import read_certificate_facts
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.errors import CertificateLoadError

from .conftest import NOW, load

_REAL = load("real-sites/apple.com.chain.pem")[0]
_PKI = ThrowawayPki.create(now_utc=NOW)
_TRUST = TrustStore.from_certificates([_PKI.root.certificate], source="fuzz")
_GENERATED = _PKI.issue_leaf(
    dns_names=("fuzz.example.test",),
    ocsp_urls=("http://127.0.0.1/ocsp",),
    crl_urls=("http://127.0.0.1/crl",),
    must_staple=True,
).der


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from([_REAL, _GENERATED]))
    data = bytearray(base)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[position] = draw(st.integers(min_value=0, max_value=255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged())
def test_damaged_bytes_give_facts_or_load_error(data: bytes) -> None:
    """Flipped or truncated bytes yield facts or CertificateLoadError, nothing else."""
    try:
        facts = read_certificate_facts(data)
    except CertificateLoadError as exc:
        assert exc.reason
    else:
        assert len(facts.sha256_hex) == 64


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_damaged())
def test_damaged_chains_never_raise(data: bytes) -> None:
    """A chain holding damaged bytes is judged, with findings, and never raises."""
    analysis = analyse_chain_der(
        (data, _PKI.intermediate.der), now=NOW, trust=_TRUST, expected_name="fuzz.example.test"
    )
    assert analysis.findings or analysis.chain is not None
