"""Grade caps, findings and Mozilla points on recorded observations (no sockets).

These cover what the local OpenSSL 3 cannot serve (SSLv2, SSLv3, RC4, 3DES, EXPORT,
compression, missing RFC 5746 and RFC 7507 support).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from certvigil.analysis.deep_assessment import assess_tls
from certvigil.analysis.grade import GRADES, CertificateVerdicts
from certvigil.analysis.model import KeyType
from certvigil.analysis.mozilla_profiles import MozillaProfile, check_mozilla_profile
from certvigil.analysis.tls_config import judge_tls_config, parse_hsts_max_age
from certvigil.observed.tls_config import (
    HttpObservation,
    ProtocolSupport,
    TlsConfigObservation,
)
from certvigil.targets.target import Target
from certvigil.tls.cipher_suites import SUITES
from certvigil.tls.records import TlsProtocol

CERT = CertificateVerdicts(
    is_trusted=True, hostname_matches=True, key_type=KeyType.RSA, key_bits=2048,
    signature_hash="sha256",
)  # fmt: skip
ECDHE_GCM = 0xC02F
ECDHE_GCM_256 = 0xC030
TLS13 = (0x1301, 0x1302)


def observation(
    suites: Mapping[TlsProtocol, tuple[int, ...]],
    **facts: object,
) -> TlsConfigObservation:
    """An observation accepting ``suites`` per protocol, with secure defaults."""
    protocols = tuple(
        ProtocolSupport(
            protocol=p,
            is_accepted=p in suites,
            cipher_suites=suites.get(p, ()),
            server_enforces_order=True if len(suites.get(p, ())) > 1 else None,
            rejection=None if p in suites else "handshake_failure",
        )
        for p in TlsProtocol
    )
    defaults: dict[str, object] = {
        "tls13_groups": (29, 23) if TlsProtocol.TLS_1_3 in suites else (),
        "ecdh_groups": (29, 23),
        "fallback_scsv": True if len(suites) > 1 else None,
        "secure_renegotiation": True,
        "compression": False,
    }
    defaults.update(facts)
    return TlsConfigObservation(
        target=Target(host="127.0.0.1", port=443),
        peer_address="127.0.0.1",
        observed_at_utc=datetime(2026, 1, 1, tzinfo=UTC),
        protocols=protocols,
        **defaults,  # type: ignore[arg-type]
    )


GOOD = {TlsProtocol.TLS_1_2: (ECDHE_GCM_256, ECDHE_GCM), TlsProtocol.TLS_1_3: TLS13}


def grade_of(obs: TlsConfigObservation, cert: CertificateVerdicts = CERT) -> str:
    return assess_tls(obs, cert).grade.grade


def rule_codes(obs: TlsConfigObservation) -> set[str]:
    return {r.code for r in assess_tls(obs, CERT).grade.rules}


def test_good_configuration_is_a_and_a_plus_with_hsts() -> None:
    """TLS 1.2/1.3 ECDHE AEAD only is A; a long HSTS makes it A+; a short one does not."""
    assert grade_of(observation(GOOD)) == "A"
    long_hsts = HttpObservation(status_code=200, hsts_header="max-age=31536000")
    short_hsts = HttpObservation(status_code=200, hsts_header="max-age=3600")
    assert grade_of(observation(GOOD, http=long_hsts)) == "A+"
    assert grade_of(observation(GOOD, http=short_hsts)) == "A"


def test_sslv2_is_f_and_sslv3_is_c() -> None:
    """SSLv2 caps at F, SSLv3 at C."""
    sslv2 = {**GOOD, TlsProtocol.SSL_2_0: (0x0700C0,)}
    sslv3 = {**GOOD, TlsProtocol.SSL_3_0: (0x002F,)}
    assert grade_of(observation(sslv2)) == "F"
    assert "protocol_sslv2" in {f.code for f in judge_tls_config(observation(sslv2)).findings}
    assert grade_of(observation(sslv3)) == "C"
    assert "sslv3" in rule_codes(observation(sslv3))


def test_legacy_suites_caps() -> None:
    """RC4 and 3DES with TLS 1.2 cap at C; EXPORT and NULL at F."""
    rc4 = observation({TlsProtocol.TLS_1_2: (ECDHE_GCM, 0x0005)})
    des3 = observation({TlsProtocol.TLS_1_2: (ECDHE_GCM, 0x000A)})
    export = observation({TlsProtocol.TLS_1_2: (ECDHE_GCM, 0x0003)})
    null = observation({TlsProtocol.TLS_1_2: (ECDHE_GCM, 0x0002)})
    assert grade_of(rc4) == "C" and "rc4_modern" in rule_codes(rc4)
    assert grade_of(des3) == "C" and "64bit_block_modern" in rule_codes(des3)
    assert grade_of(export) == "F" and "export_suites" in rule_codes(export)
    assert grade_of(null) == "F" and "null_suites" in rule_codes(null)
    findings = {f.code for f in judge_tls_config(des3).findings}
    assert "cipher_3des" in findings


def test_tls_options_caps() -> None:
    """No secure renegotiation is F, compression C, no fallback SCSV A-."""
    assert grade_of(observation(GOOD, secure_renegotiation=False)) == "F"
    assert grade_of(observation(GOOD, compression=True)) == "C"
    assert grade_of(observation(GOOD, fallback_scsv=False)) == "A-"


def test_protocol_and_key_exchange_caps() -> None:
    """TLS 1.0 caps at B, no TLS 1.2 at C, 1024-bit DH at B, 512-bit DH at F."""
    with_tls10 = {**GOOD, TlsProtocol.TLS_1_0: (0xC013,)}
    assert grade_of(observation(with_tls10)) == "B"
    assert grade_of(observation({TlsProtocol.TLS_1_1: (0xC013,)})) == "C"
    dhe = {TlsProtocol.TLS_1_2: (ECDHE_GCM, 0x009E)}
    assert grade_of(observation(dhe, dh_prime_bits=1024)) == "B"
    assert grade_of(observation(dhe, dh_prime_bits=512)) == "F"


def test_forward_secrecy_and_aead_caps() -> None:
    """A server that prefers static RSA or CBC is capped at B."""
    prefers_rsa = observation({TlsProtocol.TLS_1_2: (0x009C, ECDHE_GCM)})
    prefers_cbc = observation({TlsProtocol.TLS_1_2: (0xC013, ECDHE_GCM)})
    assert "no_forward_secrecy" in rule_codes(prefers_rsa)
    assert "no_aead" in rule_codes(prefers_cbc)
    assert grade_of(prefers_rsa) == "B" and grade_of(prefers_cbc) == "B"


def test_certificate_grades_take_precedence() -> None:
    """Revoked is F, expired or untrusted T, mismatch M; F beats T beats M."""
    obs = observation(GOOD)
    assert grade_of(obs, replace(CERT, is_revoked=True, is_trusted=False)) == "F"
    assert grade_of(obs, replace(CERT, is_expired=True)) == "T"
    assert grade_of(obs, replace(CERT, is_not_yet_valid=True)) == "T"
    assert grade_of(obs, replace(CERT, is_trusted=False, hostname_matches=False)) == "T"
    assert grade_of(obs, replace(CERT, hostname_matches=False)) == "M"
    assert grade_of(obs, replace(CERT, key_bits=1024)) == "B"
    assert grade_of(obs, replace(CERT, signature_hash="md5")) == "F"


def test_mozilla_points() -> None:
    """Each failing Mozilla point is listed; a modern-only server passes modern."""
    modern = observation({TlsProtocol.TLS_1_3: TLS13})
    ecdsa = replace(CERT, key_type=KeyType.EC, key_bits=256)
    config = judge_tls_config(modern)
    assert check_mozilla_profile(MozillaProfile.MODERN, modern, config, ecdsa).is_compliant
    legacy = observation({**GOOD, TlsProtocol.TLS_1_0: (0xC013, 0x000A)}, dh_prime_bits=1024)
    result = check_mozilla_profile(
        MozillaProfile.INTERMEDIATE, legacy, judge_tls_config(legacy), CERT,
        certificate_lifespan_days=400,
    )  # fmt: skip
    text = " | ".join(result.failures)
    assert "TLSv1.0" in text
    assert "DES-CBC3-SHA" in text
    assert "at least 2048 bits, not 1024" in text
    assert "at most 366 days, not 400" in text
    old = check_mozilla_profile(MozillaProfile.OLD, legacy, judge_tls_config(legacy), CERT)
    assert old.is_compliant, old.failures


def test_hsts_parsing() -> None:
    """max-age is read case-insensitively, quoted or not; junk gives None."""
    assert parse_hsts_max_age('Max-Age="300"; includeSubDomains') == 300
    assert parse_hsts_max_age("includeSubDomains; max-age=10") == 10
    assert parse_hsts_max_age("max-age=abc") is None
    assert parse_hsts_max_age(None) is None


_TLS12_CODES = sorted(c for c, s in SUITES.items() if not s.is_tls13)


@given(extra=st.lists(st.sampled_from(_TLS12_CODES), min_size=1, max_size=5, unique=True))
def test_accepting_more_suites_never_improves_the_grade(extra: list[int]) -> None:
    """Adding suites (appended after the server's preferred ones) never raises the grade."""
    base = observation(GOOD)
    wider = observation(
        {**GOOD, TlsProtocol.TLS_1_2: tuple(dict.fromkeys((*GOOD[TlsProtocol.TLS_1_2], *extra)))}
    )
    assert GRADES.index(grade_of(wider)) >= GRADES.index(grade_of(base))


def test_expiry_is_the_one_trust_rule_when_it_is_the_only_cause() -> None:
    """An expired leaf whose chain fails only on dates is graded by `certificate_expired`
    alone, whether analysis could verify it at another moment or only named the cause."""
    obs = observation(GOOD)
    expired = replace(CERT, is_trusted=False, is_expired=True)
    for verdicts in (
        replace(expired, trusted_ignoring_validity=True),
        replace(expired, trusted_ignoring_validity=False, untrusted_causes=("expired",)),
    ):
        codes = {r.code for r in assess_tls(obs, verdicts).grade.rules}
        assert "certificate_expired" in codes
        assert "certificate_not_trusted" not in codes
    both = replace(expired, untrusted_causes=("self_signed", "expired"))
    codes = {r.code for r in assess_tls(obs, both).grade.rules}
    assert {"certificate_expired", "certificate_not_trusted"} <= codes
