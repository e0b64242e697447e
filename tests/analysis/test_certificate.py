"""Facts read off real and crafted certificates, checked against `openssl x509 -text`."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography import x509

from certvigil.analysis.certificate import parse_certificate, read_certificate_facts
from certvigil.analysis.der import decode_oid, split_extensions
from certvigil.analysis.model import KeyType, ValidationLevel
from certvigil.demo.pki import CertificateAuthority, KeySpec, ThrowawayPki, self_signed_leaf
from certvigil.errors import CertificateLoadError

from .conftest import CERTS, NOW, load


def test_every_test_certificate_parses() -> None:
    """Every certificate in the test data yields facts without raising."""
    files = sorted(CERTS.rglob("*.pem"))
    assert len(files) > 40
    count = 0
    for path in files:
        for der in load(str(path.relative_to(CERTS))):
            facts = read_certificate_facts(der)
            assert len(facts.sha256_hex) == 64
            assert facts.not_before_utc.tzinfo is not None
            count += 1
    assert count > 60


def test_no_subject_certificate() -> None:
    """An empty subject gives "" and no CN; the SAN, SCTs and DV policy still read."""
    facts = read_certificate_facts(load("appmattus/no-subject.pem")[0])
    assert facts.subject == ""
    assert facts.subject_cn is None
    assert facts.san_dns == ("no-subject.badssl.com",)
    assert facts.serial_hex == "23e64f20c37c0d87101f7192efc5d372"
    assert facts.sha256_hex.startswith("4dd1e0e41d5604c6e420ca38efd36c27")
    assert facts.sct_count == 4
    assert facts.validation_level is ValidationLevel.DV
    assert (facts.key_type, facts.key_bits) == (KeyType.RSA, 2048)
    assert facts.not_before_utc == datetime(2017, 3, 17, tzinfo=UTC)
    assert facts.not_after_utc == datetime(2020, 6, 16, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(
    ("relative", "san_count", "sct_count", "level", "signature"),
    [
        ("appmattus/bloomberg.pem", 51, 3, ValidationLevel.OV, "sha256WithRSAEncryption"),
        (
            "real-sites/microsoft.com.chain.pem",
            163,
            3,
            ValidationLevel.OV,
            "sha384WithRSAEncryption",
        ),
        ("real-sites/google.com.chain.pem", 137, 2, ValidationLevel.DV, "sha256WithRSAEncryption"),
        ("real-sites/apple.com.chain.pem", 1, 4, ValidationLevel.EV, "ecdsa-with-SHA256"),
        ("zlint/idnCorrectUnicode.pem", 2, 2, ValidationLevel.DV, "sha256WithRSAEncryption"),
    ],
)
def test_real_leaves(
    relative: str, san_count: int, sct_count: int, level: ValidationLevel, signature: str
) -> None:
    """SAN and SCT counts, validation level and signature match openssl's reading."""
    facts = read_certificate_facts(load(relative)[0])
    assert len(facts.san_dns) == san_count
    assert facts.sct_count == sct_count
    assert facts.validation_level is level
    assert facts.signature_algorithm == signature
    assert not facts.is_ca
    assert not facts.is_self_signed


def test_apple_extensions() -> None:
    """AIA, CRL DP, key usage, EKU and key identifiers of apple.com read as openssl shows."""
    facts = read_certificate_facts(load("real-sites/apple.com.chain.pem")[0])
    assert facts.ca_issuer_urls == ("http://certs.apple.com/apevsecc1g1.der",)
    assert facts.ocsp_urls == ("http://ocsp.apple.com/ocsp03-apevsecc1g101",)
    assert facts.crl_urls == ("http://crl.apple.com/apevsecc1g1.crl",)
    assert facts.key_usage == ("digital_signature",)
    assert facts.extended_key_usage == ("serverAuth",)
    assert facts.subject_key_id_hex == "23a9d70efa27e8904adb6674e33ab351d5280d89"
    assert facts.authority_key_id_hex == "e085487d13a6d310199f5ccb6b782492f8ae1bae"
    assert (facts.key_type, facts.key_bits, facts.key_curve) == (KeyType.EC, 256, "secp256r1")
    assert "2.16.840.1.114412.2.1" in facts.policy_oids
    assert facts.subject_cn == "apple.com"
    assert "jurisdictionC=US" in facts.subject or "1.3.6.1.4.1.311.60.2.1.3=US" in facts.subject


def test_idn_certificate() -> None:
    """The IDN certificate keeps A-label SANs and a UTF-8 CN."""
    facts = read_certificate_facts(load("zlint/idnCorrectUnicode.pem")[0])
    assert facts.san_dns == (
        "xn----7sbaabin3cbc7afgb4aiqh6v.xn--80adxhks",
        "www.xn----7sbaabin3cbc7afgb4aiqh6v.xn--80adxhks",
    )
    assert facts.subject_cn == "адвокатская-контора.москва"
    assert facts.serial_hex == "33eb7007cc9e258768e0586bf27b4fea"


@pytest.mark.parametrize(
    ("relative", "address"),
    [("zlint/SANIPv4Address.pem", "192.168.0.1"), ("zlint/SANIPv6Address.pem", "2001:db8::2:1")],
)
def test_ip_san_certificates(relative: str, address: str) -> None:
    """IP SANs come out in canonical text form; the empty issuer reads as ""."""
    facts = read_certificate_facts(load(relative)[0])
    assert facts.san_ip == (address,)
    assert facts.san_dns == ()
    assert facts.issuer == ""
    assert facts.key_curve == "secp256r1"


def test_ed25519_self_signed_v1() -> None:
    """The Ed25519 test certificate: key type, no hash, self-signed, version 1."""
    facts = read_certificate_facts(load("sslyze/server-ed25519-cert.pem")[0])
    assert (facts.key_type, facts.key_bits) == (KeyType.ED25519, 256)
    assert facts.signature_algorithm == "ED25519"
    assert facts.signature_hash is None
    assert facts.is_self_signed
    assert facts.version == 1
    assert facts.serial_hex == "57cb620124ec204c3d9f3d50450eadcd3521ad21"


def test_p521_intermediate() -> None:
    """A P-521 key reports 521 bits and its curve."""
    facts = read_certificate_facts(load("azul/p521-ecdsa-intermediate-cert.pem")[0])
    assert (facts.key_type, facts.key_bits, facts.key_curve) == (KeyType.EC, 521, "secp521r1")
    assert facts.signature_hash == "sha512"


def test_precertificate_poison() -> None:
    """A precertificate is flagged by its CT poison extension."""
    facts = read_certificate_facts(load("ct-related/navigli2025h2_precert_idx0_rsa.pem")[0])
    assert facts.is_precertificate
    assert len(facts.san_dns) == 8
    leaf = read_certificate_facts(load("real-sites/google.com.chain.pem")[0])
    assert not leaf.is_precertificate


def test_roots_are_self_signed() -> None:
    """Real roots (RSA and EC, SHA-256 and SHA-384) are recognised as self-signed CAs."""
    for name in ("letsencrypt/isrgrootx1.pem", "letsencrypt/isrg-root-x2.pem"):
        facts = read_certificate_facts(load(name)[0])
        assert facts.is_self_signed
        assert facts.is_ca
    cross = read_certificate_facts(load("letsencrypt/2024_e5-cross.pem")[0])
    assert not cross.is_self_signed


def test_zero_serial_is_a_problem_not_an_error() -> None:
    """A zero serial (old test CA) yields facts plus a parse problem, not an exception."""
    facts = read_certificate_facts(load("appmattus/ca-cert.pem")[0])
    assert facts.serial_hex == "00"
    assert any("serial number is zero or negative" in p for p in facts.parse_problems)
    assert facts.is_self_signed  # SHA-1 self-signature verified by hand


def test_zero_serial_in_aki_is_named() -> None:
    """A zero authorityCertSerialNumber is blamed on the AKI, not on the serial."""
    facts = read_certificate_facts(load("appmattus/test-embedded-cert.pem")[0])
    assert facts.serial_hex == "07"
    assert facts.parse_problems == (
        "the authority key identifier holds a zero or negative serial number",
    )
    assert facts.sct_count == 1


def _negative_serial_der() -> bytes:
    leaf = ThrowawayPki.create(now_utc=NOW).issue_leaf(serial_number=1)
    marker = bytes.fromhex("a0030201020201" + "01")
    assert leaf.der.count(marker) == 1
    return leaf.der.replace(marker, bytes.fromhex("a0030201020201" + "81"))


def test_negative_serial() -> None:
    """A negative serial is kept as its two's-complement bytes with a parse problem."""
    facts = read_certificate_facts(_negative_serial_der())
    assert facts.serial_hex == "81"
    assert facts.parse_problems == (
        "the serial number is zero or negative (RFC 5280 requires a positive one)",
    )
    assert facts.san_dns == ("localhost",)


def test_malformed_extension_degrades_one_field() -> None:
    """A broken SAN leaves san_dns empty and a problem; other extensions still read."""
    leaf = ThrowawayPki.create(now_utc=NOW).issue_leaf(
        dns_names=("localhost",), ocsp_urls=("http://127.0.0.1/ocsp",), must_staple=True
    )
    bad = leaf.der.replace(b"\x82\x09localhost", b"\x82\x09local\xffost")
    assert bad != leaf.der
    with pytest.raises(ValueError, match="parsing"):
        x509.load_der_x509_certificate(bad).extensions  # noqa: B018  (cryptography gives up)
    facts = read_certificate_facts(bad)
    assert facts.san_dns == ()
    assert len(facts.parse_problems) == 1
    assert facts.parse_problems[0].startswith("extension 2.5.29.17 could not be read")
    assert facts.ocsp_urls == ("http://127.0.0.1/ocsp",)
    assert facts.must_staple


@pytest.mark.parametrize(
    ("data", "reason"),
    [(b"", "error parsing"), (b"\x30\x03\x02\x01\x01", "error parsing"), (b"garbage", "")],
)
def test_not_a_certificate(data: bytes, reason: str) -> None:
    """Bytes that are not a certificate raise CertificateLoadError with the reason."""
    with pytest.raises(CertificateLoadError) as caught:
        read_certificate_facts(data)
    assert reason in caught.value.reason
    assert caught.value.reason


def test_truncated_certificate() -> None:
    """A truncated DER certificate is refused cleanly."""
    der = load("real-sites/google.com.chain.pem")[0]
    with pytest.raises(CertificateLoadError):
        read_certificate_facts(der[: len(der) // 2])


def test_generated_oddities() -> None:
    """Facts of generated certificates reflect what the factory was asked for."""
    root = CertificateAuthority.root(now_utc=NOW, key=KeySpec.RSA_2048)
    sha1 = read_certificate_facts(root.issue_leaf(signature_hash="sha1").der)
    assert sha1.signature_algorithm == "sha1WithRSAEncryption"
    assert sha1.signature_hash == "sha1"
    weak = read_certificate_facts(root.issue_leaf(key=KeySpec.RSA_1024).der)
    assert weak.key_bits == 1024
    staple = read_certificate_facts(root.issue_leaf(must_staple=True, valid_days=90).der)
    assert staple.must_staple
    assert staple.validity_days == 90
    ss = read_certificate_facts(self_signed_leaf(now_utc=NOW).der)
    assert ss.is_self_signed and not ss.is_ca
    ev = read_certificate_facts(root.issue_leaf(policy_oids=("2.23.140.1.1",)).der)
    assert ev.validation_level is ValidationLevel.EV
    none = read_certificate_facts(root.issue_leaf(policy_oids=()).der)
    assert none.validation_level is ValidationLevel.UNKNOWN


def test_facts_are_cached_by_content() -> None:
    """Parsing the same bytes twice returns the same object (intermediates repeat)."""
    der = load("real-sites/google.com.chain.pem")[1]
    assert parse_certificate(der) is parse_certificate(bytes(der))


def test_split_extensions_and_oids() -> None:
    """The DER helper splits a real certificate's extensions and decodes their OIDs."""
    der = load("real-sites/apple.com.chain.pem")[0]
    oids = [oid for oid, _ in split_extensions(der)]
    expected = [e.oid.dotted_string for e in x509.load_der_x509_certificate(der).extensions]
    assert oids == expected
    assert decode_oid(bytes.fromhex("2a864886f70d01010b")) == "1.2.840.113549.1.1.11"
