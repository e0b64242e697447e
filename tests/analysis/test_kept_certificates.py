"""Certificates a process keeps between judgements: facts by digest, verdicts by chain.

A server is sent the same fleet every cycle. A certificate it has met before must cost
a digest and a lookup, not a parse and a signature check, for fleets far larger than
the few thousand certificates a one-off scan shares between its endpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from certvigil.analysis.bounded import make_room
from certvigil.analysis.certificate import (
    certificate_facts,
    forget_certificates,
    keep_certificates,
    kept_certificates,
    parse_certificate,
)
from certvigil.analysis.chain import judge_chain
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.errors import CertificateLoadError

from .conftest import NOW


@pytest.fixture
def limit() -> Iterator[None]:
    """Each test sets its own limit; the one before is put back after."""
    before = kept_certificates()
    forget_certificates()
    try:
        yield
    finally:
        keep_certificates(before)
        forget_certificates()


def _parses() -> int:
    return parse_certificate.cache_info().misses


@pytest.mark.usefixtures("limit")
def test_a_certificate_met_before_is_not_parsed_again(pki: ThrowawayPki) -> None:
    der = pki.issue_leaf(dns_names=("kept.example.test",)).der
    digest, facts = certificate_facts(der)
    assert digest == hashlib.sha256(der).digest()
    assert facts == parse_certificate(der).facts
    parse_certificate.cache_clear()
    again_digest, again = certificate_facts(bytes(der))  # another bytes object, same DER
    assert again is facts and again_digest is digest
    assert _parses() == 0


@pytest.mark.usefixtures("limit")
def test_a_chain_judged_again_is_neither_parsed_nor_verified_again(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    chain = pki.served_chain_der(pki.issue_leaf(dns_names=("again.example.test",)))
    first = analyse_chain_der(chain, now=NOW, trust=trust, expected_name="again.example.test")
    parse_certificate.cache_clear()
    later = NOW + timedelta(hours=1)
    again = analyse_chain_der(chain, now=later, trust=trust, expected_name="again.example.test")
    # A verification parses each certificate it checks: none was parsed.
    assert _parses() == 0
    assert again.chain is first.chain and again.chain is not None and again.chain.is_trusted
    assert again.certificates == first.certificates


@pytest.mark.usefixtures("limit")
def test_beyond_the_limit_the_oldest_certificates_are_parsed_again(pki: ThrowawayPki) -> None:
    keep_certificates(8)
    ders = [pki.issue_leaf(dns_names=(f"n{n}.example.test",)).der for n in range(12)]
    for der in ders:
        certificate_facts(der)
    parse_certificate.cache_clear()
    certificate_facts(ders[-1])
    assert _parses() == 0
    certificate_facts(ders[0])
    assert _parses() == 1
    with pytest.raises(ValueError, match="at least one"):
        keep_certificates(0)


@pytest.mark.usefixtures("limit")
def test_a_certificate_that_does_not_parse_is_refused_each_time() -> None:
    for _ in range(2):
        with pytest.raises(CertificateLoadError):
            certificate_facts(b"\x30\x03\x02\x01\x00")


@pytest.mark.usefixtures("limit")
def test_verdicts_are_kept_for_a_fleet_as_large_as_the_limit(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    """More chains than a store kept before (8,192), each its own leaf: the first
    verdict is still the one handed out an hour later."""
    keep_certificates(10_000)
    chains = [
        pki.served_chain_der(pki.issue_leaf(dns_names=(f"f{n}.example.test",)))
        for n in range(8_500)
    ]
    first = judge_chain(chains[0], now=NOW, trust=trust)
    for chain in chains[1:]:
        judge_chain(chain, now=NOW, trust=trust)
    parse_certificate.cache_clear()
    assert judge_chain(chains[0], now=NOW + timedelta(hours=1), trust=trust) is first
    assert _parses() == 0


def test_room_is_made_oldest_first_and_a_few_at_a_time() -> None:
    cache = {n: str(n) for n in range(100)}
    make_room(cache, 200)
    assert len(cache) == 100
    make_room(cache, 100)
    # Room for the next one, and an eighth of the limit more, the oldest going first.
    assert list(cache) == list(range(13, 100))
    cache[100] = "100"
    make_room(cache, 50)
    assert list(cache) == list(range(58, 101))
