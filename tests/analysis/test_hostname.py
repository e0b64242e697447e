"""RFC 6125 hostname matching: wildcards, IDNs, IP SANs and the legacy CN."""

from __future__ import annotations

import pytest

from certvigil.analysis.certificate import read_certificate_facts
from certvigil.analysis.hostname import MatchedBy, dns_pattern_matches, match_hostname
from certvigil.demo.pki import ThrowawayPki

from .conftest import load


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("www.example.com", "www.example.com", True),
        ("WWW.Example.COM", "www.example.com", True),
        ("www.example.com.", "www.example.com", True),
        ("*.example.com", "www.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.b.example.com", False),
        ("*.example.com", ".example.com", False),
        ("w*.example.com", "www.example.com", False),
        ("*w.example.com", "www.example.com", False),
        ("www.*.com", "www.example.com", False),
        ("*.com", "example.com", False),
        ("*", "localhost", False),
        ("*.*.example.com", "a.b.example.com", False),
        ("*.example.com", "xn--bcher-kva.example.com", True),
    ],
)
def test_dns_patterns(pattern: str, name: str, expected: bool) -> None:
    """Wildcards match one whole left-most label, never partial labels or a bare TLD."""
    assert dns_pattern_matches(pattern, name) is expected


def test_idn_u_label_input_matches_a_label_san() -> None:
    """A U-label host name is converted to A-labels before matching the real IDN cert."""
    facts = read_certificate_facts(load("zlint/idnCorrectUnicode.pem")[0])
    match = match_hostname(facts, "www.адвокатская-контора.москва")
    assert match.matches
    assert match.reference == "www.xn----7sbaabin3cbc7afgb4aiqh6v.xn--80adxhks"
    assert match.matched_by is MatchedBy.SAN_DNS
    assert not match_hostname(facts, "адвокатская.москва").matches


def test_real_wildcard_leaf() -> None:
    """google.com's wildcard leaf covers www.google.com, not google.com's sub-subdomains."""
    facts = read_certificate_facts(load("real-sites/google.com.chain.pem")[0])
    assert match_hostname(facts, "www.google.com").matches
    assert match_hostname(facts, "WWW.GOOGLE.COM.").matches
    assert not match_hostname(facts, "a.b.google.com").matches
    assert not match_hostname(facts, "google.example").matches


@pytest.mark.parametrize(
    ("relative", "good", "bad"),
    [
        ("zlint/SANIPv4Address.pem", "192.168.0.1", "192.168.0.2"),
        ("zlint/SANIPv6Address.pem", "2001:DB8:0:0:0:0:2:1", "2001:db8::2:2"),
        ("zlint/SANIPv6Address.pem", "[2001:db8::2:1]", "::1"),
    ],
)
def test_ip_sans(relative: str, good: str, bad: str) -> None:
    """IP addresses match IP SANs as addresses, in any textual form."""
    facts = read_certificate_facts(load(relative)[0])
    match = match_hostname(facts, good)
    assert match.matches
    assert match.matched_by is MatchedBy.SAN_IP
    assert not match_hostname(facts, bad).matches


def test_ip_never_matches_dns_san(pki: ThrowawayPki) -> None:
    """An IP address written as a DNS SAN does not cover that IP."""
    leaf = pki.issue_leaf(dns_names=("127.0.0.1", "localhost"))
    facts = read_certificate_facts(leaf.der)
    assert not match_hostname(facts, "127.0.0.1").matches
    with_ip = read_certificate_facts(pki.issue_leaf(dns_names=(), ip_addresses=("127.0.0.1",)).der)
    assert match_hostname(with_ip, "127.0.0.1").matches
    assert not match_hostname(with_ip, "localhost").matches


def test_cn_fallback_only_without_san(pki: ThrowawayPki) -> None:
    """The CN is used only when there is no SAN, and the match says so."""
    no_san = read_certificate_facts(
        pki.issue_leaf(dns_names=("legacy.example.test",), include_san=False).der
    )
    match = match_hostname(no_san, "legacy.example.test")
    assert match.matches
    assert match.matched_by is MatchedBy.LEGACY_CN
    with_san = read_certificate_facts(
        pki.issue_leaf(dns_names=("other.example.test",), common_name="cn.example.test").der
    )
    assert not match_hostname(with_san, "cn.example.test").matches


def test_no_subject_certificate_matches_by_san() -> None:
    """A certificate with an empty subject still matches through its SAN."""
    facts = read_certificate_facts(load("appmattus/no-subject.pem")[0])
    assert match_hostname(facts, "no-subject.badssl.com").matches
    assert not match_hostname(facts, "badssl.com").matches
