"""Damaged certificate bytes never escape as anything but a finding or CertificateLoadError.

The searches run with the suite's fixed-seed profile ("ci", tests/conftest.py), so every
run tries the same inputs; ``HYPOTHESIS_PROFILE=fuzz`` searches randomly and wider. Each
input a search has found is pinned below with ``@example``, with what it broke.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cryptography import x509
from hypothesis import example, given, settings
from hypothesis import strategies as st

from certvigil.analysis.certificate import read_certificate_facts
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.revocation import judge_revocation
from certvigil.analysis.revocation_plan import plan_revocation
from certvigil.analysis.trust import TrustStore
from certvigil.errors import CertificateLoadError
from certvigil.observed.revocation import CertificateRevocationObservation, RevocationObservation

from .conftest import CERTS, NOW, load

_Test = TypeVar("_Test", bound=Callable[..., None])

_REAL = load("real-sites/apple.com.chain.pem")[0]
# Fixed bytes (tests/data/fuzz/seeds, made once by certvigil.demo.pki), so that the
# fixed-seed search tries the same inputs in every run.
_SEEDS = CERTS.parent / "fuzz" / "seeds"
_ROOT = (_SEEDS / "root.der").read_bytes()
_INTERMEDIATE = (_SEEDS / "intermediate.der").read_bytes()
_GENERATED = (_SEEDS / "leaf-must-staple.der").read_bytes()
_TRUST = TrustStore.from_certificates([x509.load_der_x509_certificate(_ROOT)], source="fuzz")
# Extension OIDs under 2.5.29 have one content byte after 55 1d: renaming one extension
# into another keeps every length and often makes a duplicate.
_EXTENSION_BYTES = (0x0E, 0x0F, 0x11, 0x13, 0x1F, 0x20, 0x23, 0x25)
_OID_POSITIONS = {
    base: [i + 4 for i in range(len(base) - 4) if base[i : i + 4] == b"\x06\x03\x55\x1d"]
    for base in (_REAL, _GENERATED)
}


def _examples(count: int) -> int:
    """``count`` in CI; the fuzz profile's wider budget when it is larger."""
    return max(count, settings.default.max_examples)


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    base = draw(st.sampled_from([_REAL, _GENERATED]))
    data = bytearray(base)
    if draw(st.booleans()):
        data[draw(st.sampled_from(_OID_POSITIONS[base]))] = draw(st.sampled_from(_EXTENSION_BYTES))
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        position = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[position] = draw(st.integers(min_value=0, max_value=255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return bytes(data)


# DER inputs earlier searches found (tests/data/README.md says which and what broke).
_FOUND = [p.read_bytes() for p in sorted((CERTS.parent / "fuzz" / "certificates").glob("*.der"))]


def _pinned(test: _Test) -> _Test:
    """``test`` with every found input as an example each run tries."""
    for found in _FOUND:
        test = example(found)(test)
    return test


@settings(max_examples=_examples(300))
@given(_damaged())
@_pinned
def test_damaged_bytes_give_facts_or_load_error(data: bytes) -> None:
    """Flipped or truncated bytes yield facts or CertificateLoadError, nothing else."""
    try:
        facts = read_certificate_facts(data)
    except CertificateLoadError as exc:
        assert exc.reason
    else:
        assert len(facts.sha256_hex) == 64


@settings(max_examples=_examples(150))
@given(_damaged())
@_pinned
def test_damaged_chains_never_raise(data: bytes) -> None:
    """A chain holding damaged bytes is judged, with findings, and never raises."""
    analysis = analyse_chain_der(
        (data, _INTERMEDIATE), now=NOW, trust=_TRUST, expected_name="fuzz.example.test"
    )
    assert analysis.findings or analysis.chain is not None


@settings(max_examples=_examples(150))
@given(_damaged())
@_pinned
def test_revocation_of_damaged_chains_is_planned_and_judged(data: bytes) -> None:
    """Revocation planning and judging over damaged certificates never raise."""
    chain = (data, _INTERMEDIATE)
    plan = plan_revocation(chain, extra_issuers_der=(_ROOT,))
    assert all(c.cert_index in (0, 1) for c in plan)
    observation = RevocationObservation(
        observed_at_utc=NOW,
        certificates=tuple(
            CertificateRevocationObservation(
                cert_index=c.cert_index,
                certificate_der=c.certificate.der,
                issuer_der=c.issuer.der if c.issuer is not None else None,
            )
            for c in plan
        ),
        staple_requested=True,
    )
    report = judge_revocation(observation, now=NOW)
    assert len(report.certificates) == len(plan)
