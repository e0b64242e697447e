"""CAA: the tree climb, issue and issuewild, critical flags, deadlines; against a local DNS."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import dns.asyncresolver
import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.ct.caa import CaaPolicy, caa_record, climb, parse_issuer_value
from certvigil.ct.fetch.caa import CaaLookupError, lookup_caa
from tests.support.dns_server import LoopbackDns


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    """A DNS server on loopback with example.com's CAA and a few odd names."""
    with LoopbackDns() as server:
        server.caa["example.com"] = [
            '0 issue "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1"',
            '0 issue "digicert.com"',
            '0 issuewild "digicert.com"',
            '0 iodef "mailto:security@example.com"',
        ]
        server.names |= {"www.example.com", "a.b.example.com", "com", "nocaa.org", "org"}
        server.caa["locked.example"] = ['0 issue ";"']
        server.caa["strict.example"] = ['128 tbs "x"', '0 issue "letsencrypt.org"']
        server.cnames["alias.example.com"] = "cdn.example.net"
        server.caa["cdn.example.net"] = ['0 issue "pki.goog"']
        yield server


def _lookup(server: LoopbackDns, name: str, deadline_s: float = 3.0) -> CaaPolicy:
    async def run() -> CaaPolicy:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = server.port
        return await lookup_caa(name, resolver=resolver, deadline_s=deadline_s)

    return asyncio.run(run())


def test_the_climb_finds_the_parent_s_records(dns_server: LoopbackDns) -> None:
    """a.b.example.com has no CAA of its own: example.com's applies, after two empty levels."""
    policy = _lookup(dns_server, "a.b.example.com")

    assert policy.found_at == "example.com"
    assert dns_server.queries == ["a.b.example.com", "b.example.com", "example.com"]
    # A record set has no order on the wire (dnspython keeps it as a set).
    assert sorted(policy.issue) == ["digicert.com", "letsencrypt.org"]
    assert policy.issuewild == ("digicert.com",)
    assert policy.permits("letsencrypt.org")
    assert not policy.permits("letsencrypt.org", wildcard=True)
    assert not policy.permits("sectigo.com")


def test_issuer_organisations_are_checked_through_known_identifiers(
    dns_server: LoopbackDns,
) -> None:
    """A Let's Encrypt certificate is allowed, a Sectigo one is not, an unknown CA is unknown."""
    policy = _lookup(dns_server, "www.example.com")

    assert policy.permits_issuer_organisation("Let's Encrypt") is True
    assert policy.permits_issuer_organisation("Sectigo Limited") is False
    assert policy.permits_issuer_organisation("DigiCert Inc", wildcard=True) is True


def test_no_caa_anywhere_lets_any_ca_issue(dns_server: LoopbackDns) -> None:
    """Without CAA up to the TLD any CA may issue."""
    policy = _lookup(dns_server, "nocaa.org")

    assert policy.found_at is None
    assert policy.permits("anything.example")


def test_a_semicolon_or_a_critical_unknown_property_forbids_all(dns_server: LoopbackDns) -> None:
    """issue ";" allows no CA; an unknown critical tag forbids issuance altogether."""
    locked = _lookup(dns_server, "locked.example")
    strict = _lookup(dns_server, "strict.example")

    assert locked.issue == ()
    assert not locked.permits("letsencrypt.org")
    assert strict.has_critical_unknown
    assert not strict.permits("letsencrypt.org")


def test_a_cname_is_followed(dns_server: LoopbackDns) -> None:
    """CAA at an alias is the target's record set."""
    assert _lookup(dns_server, "alias.example.com").issue == ("pki.goog",)


def test_a_server_failure_is_an_error_not_an_empty_policy(dns_server: LoopbackDns) -> None:
    """SERVFAIL must not read as "no CAA": it is an error naming the name."""
    dns_server.servfail.add("broken.example.com")

    with pytest.raises(CaaLookupError, match=r"CAA of broken\.example\.com"):
        _lookup(dns_server, "broken.example.com")


def test_a_silent_server_costs_the_deadline_only(dns_server: LoopbackDns) -> None:
    """A server that never answers ends in an error at the deadline."""
    dns_server.silent.add("quiet.example.com")

    with pytest.raises(CaaLookupError, match="no answer within"):
        _lookup(dns_server, "quiet.example.com", deadline_s=0.5)


def test_climb_and_values() -> None:
    """Wildcards climb from their base; issuer values keep the identifier only."""
    assert climb("*.a.example.com") == ("a.example.com", "example.com", "com")
    assert parse_issuer_value(" LetsEncrypt.org. ; validationmethods=dns-01") == "letsencrypt.org"
    assert parse_issuer_value(";") == ""
    assert parse_issuer_value("bad value") == ""


@given(
    st.lists(
        st.tuples(st.integers(0, 255), st.binary(max_size=20), st.binary(max_size=60)),
        max_size=6,
    ),
    st.text(max_size=30),
    st.booleans(),
)
def test_any_records_give_an_answer_never_an_error(
    records: list[tuple[int, bytes, bytes]], ca: str, wildcard: bool
) -> None:
    """Whatever bytes a DNS server puts in CAA records, the policy answers a bool."""
    policy = CaaPolicy("example.com", "example.com", tuple(caa_record(*r) for r in records))

    assert policy.permits(ca, wildcard=wildcard) in (True, False)
    assert policy.permits_issuer_organisation(ca, wildcard=wildcard) in (True, False, None)
