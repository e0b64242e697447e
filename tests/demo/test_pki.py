"""The throwaway PKI issues the certificates it is asked for, oddities included."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.verification import PolicyBuilder, Store

from certvigil.demo.pki import (
    CertificateAuthority,
    KeySpec,
    ThrowawayPki,
    self_signed_leaf,
    shared_key,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    """A root and intermediate pinned at ``NOW``."""
    return ThrowawayPki.create(now_utc=NOW)


def test_leaf_verifies_to_root(pki: ThrowawayPki) -> None:
    """A default leaf chains through the intermediate to the root under WebPKI rules."""
    leaf = pki.issue_leaf(dns_names=("www.example.test",))
    verifier = (
        PolicyBuilder()
        .store(Store([pki.root.certificate]))
        .time(NOW)
        .build_server_verifier(x509.DNSName("www.example.test"))
    )
    path = verifier.verify(leaf.certificate, [pki.intermediate.certificate])
    assert [c.subject for c in path] == [
        leaf.certificate.subject,
        pki.intermediate.certificate.subject,
        pki.root.certificate.subject,
    ]


def test_validity_is_as_asked(pki: ThrowawayPki) -> None:
    """Explicit validity bounds and ``valid_days`` end up in the certificate."""
    end = NOW + timedelta(days=7, seconds=5)
    leaf = pki.issue_leaf(not_after_utc=end)
    assert leaf.certificate.not_valid_after_utc == end
    short = pki.issue_leaf(not_before_utc=NOW, valid_days=3)
    assert short.certificate.not_valid_after_utc == NOW + timedelta(days=3)


def test_sans_of_every_kind(pki: ThrowawayPki) -> None:
    """DNS (IDN as A-label), IP v4/v6, e-mail and URI SANs are encoded."""
    leaf = pki.issue_leaf(
        dns_names=("*.example.test", "bücher.example"),
        ip_addresses=("127.0.0.1", "::1"),
        emails=("ops@example.test",),
        uris=("https://example.test/",),
    )
    san = leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["*.example.test", "xn--bcher-kva.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert san.get_values_for_type(x509.RFC822Name) == ["ops@example.test"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["https://example.test/"]


def test_no_san(pki: ThrowawayPki) -> None:
    """``include_san=False`` leaves the extension out and keeps the CN."""
    leaf = pki.issue_leaf(dns_names=("legacy.test",), include_san=False)
    with pytest.raises(x509.ExtensionNotFound):
        leaf.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert leaf.certificate.subject.rfc4514_string() == "CN=legacy.test"


@pytest.mark.parametrize("hash_name", ["sha1", "md5"])
def test_legacy_signature_hashes(hash_name: str) -> None:
    """SHA-1 and MD5 signatures from an RSA issuer carry the right OID and verify."""
    root = CertificateAuthority.root(key=KeySpec.RSA_2048, now_utc=NOW)
    leaf = root.issue_leaf(signature_hash=hash_name)
    assert leaf.certificate.signature_hash_algorithm is not None
    assert leaf.certificate.signature_hash_algorithm.name == hash_name
    root_key = root.certificate.public_key()
    assert isinstance(root_key, rsa.RSAPublicKey)
    # cryptography's own verify_directly_issued_by refuses these hashes; check by hand.
    root_key.verify(
        leaf.certificate.signature,
        leaf.certificate.tbs_certificate_bytes,
        padding.PKCS1v15(),
        leaf.certificate.signature_hash_algorithm,
    )


def test_legacy_hash_needs_rsa(pki: ThrowawayPki) -> None:
    """Asking an EC issuer for a SHA-1 signature is refused with the rule."""
    with pytest.raises(ValueError, match="needs an RSA issuer key"):
        pki.issue_leaf(signature_hash="sha1")


@pytest.mark.parametrize(
    ("spec", "key_class", "bits"),
    [
        (KeySpec.RSA_1024, rsa.RSAPublicKey, 1024),
        (KeySpec.EC_P384, ec.EllipticCurvePublicKey, 384),
        (KeySpec.ED25519, ed25519.Ed25519PublicKey, None),
    ],
)
def test_key_kinds(pki: ThrowawayPki, spec: KeySpec, key_class: type, bits: int | None) -> None:
    """Leaves get the key kind and size asked for."""
    public_key = pki.issue_leaf(key=spec).certificate.public_key()
    assert isinstance(public_key, key_class)
    if bits is not None:
        assert isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
        assert public_key.key_size == bits


def test_extensions_on_request(pki: ThrowawayPki) -> None:
    """AIA, CRL DP, must-staple and the CA flag appear when asked for."""
    leaf = pki.issue_leaf(
        ocsp_urls=("http://127.0.0.1:1/ocsp",),
        ca_issuer_urls=("http://127.0.0.1:1/ca.der",),
        crl_urls=("http://127.0.0.1:1/ca.crl",),
        must_staple=True,
        is_ca=True,
    ).certificate
    ext = leaf.extensions
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == [
        "http://127.0.0.1:1/ocsp",
        "http://127.0.0.1:1/ca.der",
    ]
    crl = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crl[0].full_name == [x509.UniformResourceIdentifier("http://127.0.0.1:1/ca.crl")]
    assert list(ext.get_extension_for_class(x509.TLSFeature).value) == [
        x509.TLSFeatureType.status_request
    ]
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is True


def test_self_signed_leaf() -> None:
    """A self-signed leaf has issuer == subject and verifies under its own key."""
    leaf = self_signed_leaf(dns_names=("appliance.test",), now_utc=NOW).certificate
    assert leaf.issuer == leaf.subject
    leaf.verify_directly_issued_by(leaf)


def test_fast_path_shares_one_key(pki: ThrowawayPki) -> None:
    """``issue_leaves`` yields one leaf per name, all with the same key."""
    leaves = list(pki.intermediate.issue_leaves([f"h{i}.example.test" for i in range(50)]))
    assert len(leaves) == 50
    assert len({leaf.sha256_hex for leaf in leaves}) == 50
    assert {id(leaf.private_key) for leaf in leaves} == {id(shared_key(KeySpec.EC_P256))}


def test_write_files(pki: ThrowawayPki, tmp_path: Path) -> None:
    """``write`` stores the chain PEM and a private key file only the owner can read."""
    leaf = pki.issue_leaf()
    cert_path, key_path = leaf.write(tmp_path, "server", pki.intermediate)
    loaded = x509.load_pem_x509_certificates(cert_path.read_bytes())
    assert loaded == [leaf.certificate, pki.intermediate.certificate]
    assert key_path.stat().st_mode & 0o077 == 0
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert key.public_key() == leaf.private_key.public_key()
