"""The pure judgement of a matched CT entry: validity, CA identities, alert kinds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.alerts.rules import AlertKind
from certvigil.analysis.model import Severity
from certvigil.ct.codec import DecodeError
from certvigil.ct.judge import (
    CertFacts,
    CtKind,
    CtVerdict,
    DomainPolicy,
    WatchPolicy,
    ca_identity,
    judge,
    new_names,
    parse_validity,
)
from certvigil.ct.match import WatchList

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ISSUER = "CN=R11,O=Let's Encrypt,C=US"


def _facts(*names: str, days: float = 90, starts: datetime = NOW) -> CertFacts:
    return CertFacts(
        sha256_hex="ab" * 32,
        serial_hex="0123",
        issuer=ISSUER,
        issuer_cn="R11",
        issuer_spki_sha256="cd" * 32,
        names=names,
        not_before_utc=starts,
        not_after_utc=starts + timedelta(days=days),
        is_precert=True,
        issuer_serial_key="01" * 32,
        tbs_key="02" * 32,
        renewal_key="03" * 32,
        logged_at_utc=starts,
    )


def _judge(
    facts: CertFacts, *watched: str, known: tuple[str, ...] = (), **policy: Any
) -> tuple[CtVerdict, ...]:
    matches = WatchList(watched).match(facts.names)
    return judge(facts, matches, policy=WatchPolicy(**policy), known_names=known, now=NOW)


def _validity(not_before: bytes, not_after: bytes, tags: tuple[int, int] = (0x17, 0x17)) -> bytes:
    body = bytes([tags[0], len(not_before)]) + not_before
    body += bytes([tags[1], len(not_after)]) + not_after
    return bytes([0x30, len(body)]) + body


def test_validity_reads_utctime_and_generalizedtime() -> None:
    """UTCTime years 50-99 are 19xx, 00-49 20xx; GeneralizedTime is read as written."""
    not_before, not_after = parse_validity(
        _validity(b"991231235959Z", b"20500101000000Z", (0x17, 0x18))
    )
    assert not_before == datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert not_after == datetime(2050, 1, 1, tzinfo=UTC)
    assert parse_validity(_validity(b"250503161448Z", b"250801161447Z"))[1] == datetime(
        2025, 8, 1, 16, 14, 47, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("der", "reason"),
    [
        (_validity(b"2505031614Z", b"250801161447Z"), "DER form"),
        (_validity(b"250503161448+0100", b"250801161447Z"), "DER form"),
        (_validity(b"251303161448Z", b"250801161447Z"), "is not a time"),
        (bytes([0x31, 0]), "not a SEQUENCE"),
        (bytes([0x30, 0]), "two times"),
    ],
)
def test_a_broken_validity_is_a_decode_error(der: bytes, reason: str) -> None:
    """Times that are not DER, impossible dates and wrong shapes name their defect."""
    with pytest.raises(DecodeError, match=reason):
        parse_validity(der)


@given(st.binary(max_size=64))
def test_validity_never_crashes(data: bytes) -> None:
    """Any bytes give two times or a DecodeError, nothing else."""
    try:
        parse_validity(data)
    except DecodeError:
        pass


def test_ca_identities_compare_without_case_or_spaces() -> None:
    """A DN written with spaces and another case, a CN, and a key hash all compare equal
    to the forms a finding carries."""
    facts = _facts("a.example.com")
    assert ca_identity("cn=R11, o=Let's Encrypt, c=US") in facts.issuer_identities
    assert ca_identity(" r11 ") in facts.issuer_identities
    assert ca_identity("CD" * 32) in facts.issuer_identities
    assert ca_identity("CN=R10,O=Let's Encrypt,C=US") not in facts.issuer_identities


def test_every_ct_kind_is_an_alert_kind() -> None:
    """The watch's kinds are alert-engine kinds, string for string."""
    assert {AlertKind(kind.value) for kind in CtKind} <= set(AlertKind)


def test_an_unauthorised_issuer_is_critical_only_where_a_set_is_given() -> None:
    """The domain with an authorised set excluding R11 alerts; one without a set does not."""
    facts = _facts("www.example.com", "www.example.org")
    policy = {
        "example.com": DomainPolicy(name="example.com", authorized=frozenset({"digicert ca"})),
        "example.org": DomainPolicy(name="example.org"),
    }

    verdicts = _judge(facts, "example.com", "example.org", domains=policy)

    (unauthorised,) = [v for v in verdicts if v.kind is CtKind.UNAUTHORIZED_CA]
    assert unauthorised.severity is Severity.CRITICAL and unauthorised.stays_open
    assert "example.com" in unauthorised.title and ISSUER in unauthorised.message
    allowed = {"example.com": DomainPolicy(name="example.com", authorized=frozenset({"r11"}))}
    assert not any(
        v.kind is CtKind.UNAUTHORIZED_CA for v in _judge(facts, "example.com", domains=allowed)
    )


def test_new_names_skip_the_domain_itself_known_names_and_foreign_wildcards() -> None:
    """The watched name, a known name and a wildcard above the watch are not new; a
    wildcard below it counts by its base."""
    watch = WatchList(["example.com", "a.example.org"])
    matches = watch.match(
        ["example.com", "www.example.com", "api.example.com", "*.dev.example.com", "*.example.org"]
    )

    assert new_names(matches, {"api.example.com"}) == {
        "www.example.com": "example.com",
        "dev.example.com": "example.com",
    }


def test_wildcard_short_lived_and_expiring_kinds() -> None:
    """A wildcard is a notice; a 6-day certificate is short-lived under 7 days and, two
    days before its end, expiring; a certificate already expired is not."""
    wildcard = _judge(_facts("*.example.com"), "example.com", known=("example.com",))
    assert [(v.kind, v.stays_open) for v in wildcard] == [(CtKind.WILDCARD_CERTIFICATE, False)]

    short = _facts("a.example.com", days=6, starts=NOW - timedelta(days=4))
    kinds = {
        v.kind
        for v in _judge(
            short, "example.com", known=("a.example.com",), short_lived_under=timedelta(days=7)
        )
    }
    assert kinds == {CtKind.SHORT_LIVED_CERTIFICATE, CtKind.CERTIFICATE_EXPIRING}

    expired = dataclasses.replace(short, not_after_utc=NOW - timedelta(seconds=1))
    kinds = {v.kind for v in _judge(expired, "example.com", known=("a.example.com",))}
    assert CtKind.CERTIFICATE_EXPIRING not in kinds
