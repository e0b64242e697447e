"""The AS of an address: Team Cymru's TXT answers (served by a loopback DNS server) and an
iptoasn table; parsing of hostile answers and files."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import dns.asyncresolver
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.asn import (
    AsnDataError,
    AsnInfo,
    AsnTable,
    cymru_name_query,
    cymru_origin_query,
    parse_cymru_name,
    parse_cymru_origin,
)
from certvigil.ct.fetch.asn import AsnLookupError, lookup_asn
from tests.ct.conftest import DATA
from tests.support.dns_server import LoopbackDns

TABLE = DATA / "asn" / "ip2asn-small.tsv"
# Real answers, with their queries (see tests/data/ct/README.md).
V4_QUERY = "31.108.90.216.origin.asn.cymru.com"
V4_ANSWER = "3561 | 216.88.0.0/14 | US | arin | 1998-09-25"
V6_QUERY = "8.6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.b.0.6.8.4.1.0.0.2.origin6.asn.cymru.com"
V6_ANSWER = "15169 | 2001:4860::/32 | US | arin | 2005-03-14"
NAME_ANSWER = "3561 | US | arin | 1994-09-14 | CENTURYLINK-LEGACY-SAVVIS - CenturyLink, US"


def test_query_names_are_the_reversed_octets_and_nibbles() -> None:
    """The query names for the published examples are the ones published."""
    assert cymru_origin_query("216.90.108.31") == V4_QUERY
    assert cymru_origin_query("2001:4860:b002::68") == V6_QUERY
    assert cymru_name_query(3561) == "AS3561.asn.cymru.com"
    with pytest.raises(ValueError):
        cymru_origin_query("example.com")


def test_real_origin_answers_parse() -> None:
    """Both real answers give their AS, prefix and country."""
    assert parse_cymru_origin(V4_ANSWER) == AsnInfo(
        asn=3561, prefix="216.88.0.0/14", country="US", name=None, source="cymru"
    )
    assert parse_cymru_origin(V6_ANSWER).prefix == "2001:4860::/32"
    assert parse_cymru_origin("13335 15169 | 1.1.1.0/24 | AU | apnic | 2011-08-11").asn == 13335
    assert parse_cymru_name(NAME_ANSWER) == "CENTURYLINK-LEGACY-SAVVIS - CenturyLink, US"
    assert parse_cymru_name("3561 | US") is None


@pytest.mark.parametrize("text", ["", "garbage", "AS3561 | 1.0.0.0/8 | US", "99999999999 | x | y"])
def test_answers_that_are_not_the_format_are_refused_by_name(text: str) -> None:
    """A TXT string that is not Team Cymru's layout raises AsnDataError."""
    with pytest.raises(AsnDataError, match="Team Cymru answer"):
        parse_cymru_origin(text)


@given(text=st.text(max_size=200))
@example(text="1 |\x1b[31m| \u202e")
def test_any_answer_parses_or_is_refused(text: str) -> None:
    """Any text: an AsnInfo with printable fields, or AsnDataError."""
    try:
        info = parse_cymru_origin(text)
    except AsnDataError:
        return
    assert 0 <= info.asn < 2**32
    assert info.country is None or info.country.isprintable()


def test_the_iptoasn_table_finds_ranges_and_skips_unrouted_ones() -> None:
    """Addresses inside a routed range get its AS, inside an AS-0 range or none, nothing."""
    table = AsnTable.load(TABLE)

    assert len(table) == 5  # the not-routed line is not kept
    assert table.lookup("1.0.0.200") == AsnInfo(
        asn=13335, prefix=None, country="US", name="CLOUDFLARENET", source="file"
    )
    assert table.lookup("1.0.0.255") is not None and table.lookup("1.0.1.0") is None
    assert table.lookup("1.0.2.7") is None  # not routed
    assert table.lookup("9.9.9.9") is None  # in no range
    assert table.lookup("0.0.0.1") is None  # before the first range
    assert table.lookup("216.90.108.31") is not None
    assert table.lookup("2001:4860:b002::68").asn == 15169  # type: ignore[union-attr]
    assert table.lookup("2001:4861::1") is None
    assert table.lookup("not an address") is None


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["1.0.0.0\t1.0.0.255"], r"t\.tsv:1: expected 5 tab-separated fields"),
        (["1.0.0.0\tx\t1\tUS\tA"], r"t\.tsv:1: a range bound is not an address"),
        (["1.0.0.9\t1.0.0.1\t1\tUS\tA"], r"t\.tsv:1: the range's bounds do not make a range"),
        (["1.0.0.0\t::1\t1\tUS\tA"], r"t\.tsv:1: the range's bounds"),
        (["1.0.0.0\t1.0.0.9\tAS1\tUS\tA"], r't\.tsv:1: "AS1": not an AS'),
        (["2.0.0.0\t2.0.0.9\t1\tUS\tA", "1.0.0.0\t1.0.0.9\t1\tUS\tA"], r"t\.tsv:2: .*not sorted"),
    ],
)
def test_a_bad_table_line_is_named_with_its_number(lines: list[str], message: str) -> None:
    """A line that is not the format is refused with the file, line number and reason."""
    with pytest.raises(AsnDataError, match=message):
        AsnTable.parse(lines, "t.tsv")


def test_a_missing_table_file_is_one_clear_error(tmp_path: Path) -> None:
    """A file that is not there: an AsnDataError naming it."""
    with pytest.raises(AsnDataError, match=r"missing\.tsv"):
        AsnTable.load(tmp_path / "missing.tsv")


@pytest.fixture
def dns_server() -> Iterator[LoopbackDns]:
    """A loopback DNS server holding the real Team Cymru answers."""
    with LoopbackDns() as server:
        server.txt[V4_QUERY.lower()] = [V4_ANSWER]
        server.txt["as3561.asn.cymru.com"] = [NAME_ANSWER]
        server.txt[V6_QUERY.lower()] = [V6_ANSWER]
        yield server


def _resolver(server: LoopbackDns) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    return resolver


def test_lookup_over_dns_gives_origin_and_name(dns_server: LoopbackDns) -> None:
    """Two TXT queries: the origin, then the AS's name."""
    info = asyncio.run(lookup_asn("216.90.108.31", resolver=_resolver(dns_server)))

    assert info == AsnInfo(
        asn=3561,
        prefix="216.88.0.0/14",
        country="US",
        name="CENTURYLINK-LEGACY-SAVVIS - CenturyLink, US",
        source="cymru",
    )
    assert dns_server.queries == [V4_QUERY.lower(), "as3561.asn.cymru.com"]


def test_an_ipv6_address_is_asked_by_nibbles_and_a_missing_name_is_none(
    dns_server: LoopbackDns,
) -> None:
    """The origin6 answer is used; no name record leaves the name empty."""
    info = asyncio.run(lookup_asn("2001:4860:b002::68", resolver=_resolver(dns_server)))

    assert info is not None and (info.asn, info.name) == (15169, None)


def test_an_address_nobody_announces_is_none(dns_server: LoopbackDns) -> None:
    """NXDOMAIN for the origin query: no AS, no error."""
    assert asyncio.run(lookup_asn("192.0.2.1", resolver=_resolver(dns_server))) is None


def test_a_silent_dns_server_is_cut_at_the_deadline(dns_server: LoopbackDns) -> None:
    """A server that never answers: AsnLookupError within the deadline."""
    dns_server.silent.add(V4_QUERY.lower())

    with pytest.raises(AsnLookupError, match=r"no answer within 0\.3 s"):
        asyncio.run(lookup_asn("216.90.108.31", resolver=_resolver(dns_server), deadline_s=0.3))


def test_an_answer_that_is_not_the_format_is_an_error(dns_server: LoopbackDns) -> None:
    """A TXT answer of another shape: AsnLookupError saying so, never a crash."""
    dns_server.txt[V4_QUERY.lower()] = ["v=spf1 -all"]

    with pytest.raises(AsnLookupError, match=re.escape('not "ASN | prefix | CC"')):
        asyncio.run(lookup_asn("216.90.108.31", resolver=_resolver(dns_server)))
