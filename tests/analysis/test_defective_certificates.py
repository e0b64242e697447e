"""Certificates with defects cryptography refuses to read lazily are judged, never raised."""

from __future__ import annotations

import pytest

from certvigil.analysis.certificate import parse_certificate, read_certificate_facts
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.errors import CertificateLoadError
from tests.support.crafted import craft

from .conftest import CERTS, NOW

# The defect each crafted leaf is reported with (a parse problem of certificate 0).
_PROBLEMS = {
    "duplicate_extension": "extension 2.5.29.17 (subjectAltName) appears more than once",
    "nul_in_dns_name": "holds a control character or a space",
    "malformed_san": "extension 2.5.29.17 could not be read",
    "bad_basic_constraints": "extension 2.5.29.19 could not be read",
}
_URLS = {"ocsp_urls": ("http://127.0.0.1:9/ocsp",), "crl_urls": ("http://127.0.0.1:9/crl",)}


@pytest.mark.parametrize("name", sorted(_PROBLEMS))
def test_defect_is_a_parse_problem_and_the_rest_is_read(pki: ThrowawayPki, name: str) -> None:
    """The defect is named in parse_problems; names, key and URLs are still read."""
    der = craft(name, pki.intermediate, **_URLS).der
    facts = read_certificate_facts(der)
    assert any(_PROBLEMS[name] in p for p in facts.parse_problems), facts.parse_problems
    assert facts.subject_cn is not None
    assert facts.issuer == read_certificate_facts(pki.intermediate.der).subject
    assert facts.key_bits == 256
    assert facts.ocsp_urls == _URLS["ocsp_urls"]
    assert facts.crl_urls == _URLS["crl_urls"]


def test_duplicate_extension_reads_the_first_occurrence(pki: ThrowawayPki) -> None:
    """Of two subjectAltName extensions the first is read; the parsed form keeps both OIDs."""
    parsed = parse_certificate(craft("duplicate_extension", pki.intermediate).der)
    assert parsed.facts.san_dns == ("dup.example.test",)
    assert parsed.extension_oids is not None
    assert parsed.extension_oids.count("2.5.29.17") == 2
    assert parsed.public_key is not None


@pytest.mark.parametrize("name", sorted(_PROBLEMS))
def test_chain_with_a_defective_leaf_is_judged(
    pki: ThrowawayPki, trust: TrustStore, name: str
) -> None:
    """The chain is judged and the leaf listed, with the defect among the findings."""
    der = craft(name, pki.intermediate).der
    analysis = analyse_chain_der(
        (der, pki.intermediate.der), now=NOW, trust=trust, expected_name="dup.example.test"
    )
    assert len(analysis.certificates) == 2
    assert analysis.chain is not None
    problems = [f for f in analysis.findings if f.code == "certificate_parse_problem"]
    assert any(_PROBLEMS[name] in f.message and f.cert_index == 0 for f in problems)


def test_defective_intermediate_is_judged(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A served extra certificate with a duplicated extension is listed and named."""
    leaf = pki.issue_leaf(dns_names=("www.example.test",))
    odd = craft("duplicate_extension", pki.intermediate).der
    analysis = analyse_chain_der(
        (leaf.der, pki.intermediate.der, odd),
        now=NOW,
        trust=trust,
        expected_name="www.example.test",
    )
    assert analysis.chain is not None and analysis.chain.is_trusted
    assert [f.cert_index for f in analysis.findings if f.code == "certificate_parse_problem"] == [2]


def test_unloadable_leaf_is_a_malformed_certificate(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A PrintableString holding '@' stops cryptography's loader: malformed_certificate."""
    der = craft("bad_printable_string", pki.intermediate).der
    with pytest.raises(CertificateLoadError, match="PrintableString"):
        read_certificate_facts(der)
    analysis = analyse_chain_der((der, pki.intermediate.der), now=NOW, trust=trust)
    assert [f.code for f in analysis.findings] == ["malformed_certificate"]


def test_repeat_of_an_unreadable_extension_is_named() -> None:
    """A second authorityInfoAccess after an unreadable first one is still named a repeat."""
    der = (
        CERTS.parent / "fuzz" / "certificates" / "search-tls-feature-renamed-aia.der"
    ).read_bytes()
    problems = read_certificate_facts(der).parse_problems
    assert problems[0].startswith("extension 1.3.6.1.5.5.7.1.1 could not be read")
    assert problems[1].startswith(
        "extension 1.3.6.1.5.5.7.1.1 (authorityInfoAccess) appears more than once"
    )
