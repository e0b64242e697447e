"""Certificates cryptography's builder refuses to make, crafted by patching DER and re-signing.

A leaf is issued normally (``certvigil.demo.pki``), its TBSCertificate is patched byte
for byte (every length kept), and the patched TBS is signed again with the issuer's
key: the result is what a misbehaving CA would issue, well framed and correctly signed
but defective inside. The leaf's key is kept, so a loopback TLS server can serve it.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from certvigil.demo.pki import CertificateAuthority, IssuedCert

__all__ = ["ODDITIES", "CraftedLeaf", "craft", "resign"]

# 2.5.29.99 (55 1d 63) has the encoded length of subjectAltName (55 1d 11): renaming
# the first into the second keeps every length, and cryptography's builder, which
# refuses a second SAN, accepts an unknown extension.
_STAND_IN_OID = x509.ObjectIdentifier("2.5.29.99")


@dataclass(frozen=True, slots=True)
class CraftedLeaf:
    """A defective leaf: its DER and the PEM of its (intact) private key."""

    der: bytes
    key_pem: bytes

    @property
    def pem(self) -> bytes:
        """The certificate as PEM, encoded here (cryptography may refuse to load it)."""
        body = base64.encodebytes(self.der).replace(b"\n", b"")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        return (
            b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"
        )


def _encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content


def _element_end(der: bytes, offset: int) -> int:
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2 + first
    count = first & 0x7F
    return offset + 2 + count + int.from_bytes(der[offset + 2 : offset + 2 + count], "big")


def resign(der: bytes, tbs: bytes, ca: CertificateAuthority) -> bytes:
    """``der`` with its TBSCertificate replaced by ``tbs``, signed again by ``ca``.

    Args:
        der: A certificate ``ca`` issued with SHA-256 (its signatureAlgorithm is kept).
        tbs: The patched TBSCertificate DER.
        ca: The issuer whose key signs.

    Returns:
        The new certificate's DER.
    """
    header = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
    tbs_end = _element_end(der, header)
    algorithm = der[tbs_end : _element_end(der, tbs_end)]
    key = ca.private_key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(tbs, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise TypeError(f"unsupported CA key {type(key).__name__}")
    return _encode(0x30, tbs + algorithm + _encode(0x03, b"\x00" + signature))


def _patch(ca: CertificateAuthority, leaf: IssuedCert, old: bytes, new: bytes) -> CraftedLeaf:
    tbs = leaf.certificate.tbs_certificate_bytes
    if tbs.count(old) != 1 or len(old) != len(new):
        raise ValueError(f"cannot patch {old!r} in the TBS")
    return CraftedLeaf(resign(leaf.der, tbs.replace(old, new), ca), leaf.key_pem)


def duplicate_extension(ca: CertificateAuthority, **options: Any) -> CraftedLeaf:
    """Two subjectAltName extensions (cryptography raises ``DuplicateExtension``)."""
    plain = ca.issue_leaf(dns_names=("dup.example.test",), **options)
    original = plain.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(original.subject)
        .issuer_name(original.issuer)
        .public_key(original.public_key())
        .serial_number(original.serial_number)
        .not_valid_before(original.not_valid_before_utc)
        .not_valid_after(original.not_valid_after_utc)
    )
    for extension in original.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    san = x509.SubjectAlternativeName([x509.DNSName("dup.example.test")])
    builder = builder.add_extension(
        x509.UnrecognizedExtension(_STAND_IN_OID, san.public_bytes()), critical=False
    )
    stand_in = IssuedCert(
        certificate=builder.sign(ca.private_key, hashes.SHA256()),  # type: ignore[arg-type]
        private_key=plain.private_key,
    )
    return _patch(ca, stand_in, b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x11")


def nul_in_dns_name(ca: CertificateAuthority, **options: Any) -> CraftedLeaf:
    """A DNSName SAN holding a NUL: ``nul\\x00.example.test``."""
    leaf = ca.issue_leaf(dns_names=("nulx.example.test",), **options)
    return _patch(ca, leaf, b"\x82\x11nulx.example.test", b"\x82\x11nul\x00.example.test")


def malformed_san(ca: CertificateAuthority, **options: Any) -> CraftedLeaf:
    """A DNSName SAN holding a byte outside IA5 (``\\xff``): the SAN does not parse."""
    leaf = ca.issue_leaf(dns_names=("badx.example.test",), **options)
    return _patch(ca, leaf, b"\x82\x11badx.example.test", b"\x82\x11bad\xff.example.test")


def bad_printable_string(ca: CertificateAuthority, **options: Any) -> CraftedLeaf:
    """A subject O that is a PrintableString holding ``@``, which PrintableString lacks."""
    leaf = ca.issue_leaf(dns_names=("ps.example.test",), organization="Acme Co", **options)
    return _patch(ca, leaf, b"\x0c\x07Acme Co", b"\x13\x07Acme@Co")


def bad_basic_constraints(ca: CertificateAuthority, **options: Any) -> CraftedLeaf:
    """basicConstraints whose cA BOOLEAN is 0x01 (DER allows only 0x00 and 0xff)."""
    leaf = ca.issue_leaf(dns_names=("bc.example.test",), is_ca=True, **options)
    return _patch(ca, leaf, bytes.fromhex("30030101ff"), bytes.fromhex("3003010101"))


ODDITIES: dict[str, Callable[..., CraftedLeaf]] = {
    "duplicate_extension": duplicate_extension,
    "nul_in_dns_name": nul_in_dns_name,
    "malformed_san": malformed_san,
    "bad_printable_string": bad_printable_string,
    "bad_basic_constraints": bad_basic_constraints,
}
"""Each defect a basic scan judges, by name."""


def craft(name: str, ca: CertificateAuthority, **options: Any) -> CraftedLeaf:
    """The leaf with defect ``name`` (a key of ``ODDITIES``), issued by ``ca``.

    ``options`` go to ``CertificateAuthority.issue_leaf`` (``ocsp_urls``, ``crl_urls``...).
    """
    return ODDITIES[name](ca, **options)
