"""A certificate whose TLS Feature extension names an unknown feature is still read."""

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID

from certvigil.analysis.certificate import read_certificate_facts


def _leaf_with_tls_feature(value_der: bytes) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "feature.example.test")])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=90))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("feature.example.test")]), critical=False
        )
        .add_extension(
            x509.UnrecognizedExtension(ExtensionOID.TLS_FEATURE, value_der), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(Encoding.DER)


def test_unknown_tls_feature_value_is_a_parse_problem_not_an_exception() -> None:
    """TLS Feature 0 (unassigned) becomes a parse problem; the other facts are still read."""
    # SEQUENCE { INTEGER 0 }: cryptography's enum lookup of feature 0 raises KeyError.
    der = _leaf_with_tls_feature(b"\x30\x03\x02\x01\x00")

    facts = read_certificate_facts(der)

    assert facts.san_dns == ("feature.example.test",)
    assert facts.must_staple is False
    assert facts.parse_problems, "the unreadable extension must be reported"


def test_status_request_feature_still_means_must_staple() -> None:
    """TLS Feature 5 (status_request) is read as must-staple through the same path."""
    der = _leaf_with_tls_feature(b"\x30\x03\x02\x01\x05")

    facts = read_certificate_facts(der)

    assert facts.must_staple is True
    assert facts.parse_problems == ()
