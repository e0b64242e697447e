"""A throwaway PKI for tests, the demo and benchmarks: roots, intermediates, odd leaves.

Every key is generated at run time and lives only in memory (or in files the caller
writes to a temporary directory); nothing here is ever committed.

Typical use::

    pki = ThrowawayPki.create(now_utc=now)
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    served = leaf.chain_der(pki.intermediate)      # leaf first, as a server sends it
    pki.root.certificate                           # the anchor to trust

Oddities are keyword arguments of :meth:`CertificateAuthority.issue_leaf`: validity
(``not_before_utc``/``not_after_utc``/``valid_days``), weak keys (``key=KeySpec.RSA_1024``),
SHA-1 or MD5 signatures (``signature_hash="sha1"``, RSA issuers only), no SAN, IP SANs,
wildcards, AIA/CRL URLs, must-staple, CA flag, EKUs and policy OIDs. Self-signed leaves
come from :func:`self_signed_leaf`; misordered, incomplete or padded chains are just a
different order of :attr:`IssuedCert.der` values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import idna
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
"""The private key types the factory makes."""

_SigningHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512

_HASHES: dict[str, _SigningHash] = {
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}

# cryptography refuses to build SHA-1 and MD5 signatures, yet old certificates carry
# them and the analysis must recognise them. For RSA the algorithm identifiers of
# sha256WithRSAEncryption, sha1WithRSAEncryption and md5WithRSAEncryption have the
# same length, so a certificate signed with SHA-256 can have its identifier swapped and
# its TBS re-signed without re-encoding anything else.
_OID_DER_RSA_SHA256 = bytes.fromhex("06092a864886f70d01010b")
_OID_DER_RSA_LEGACY = {
    "sha1": (bytes.fromhex("06092a864886f70d010105"), hashes.SHA1()),
    "md5": (bytes.fromhex("06092a864886f70d010104"), hashes.MD5()),
}


class KeySpec(StrEnum):
    """Key algorithms and sizes the factory can generate."""

    RSA_1024 = "rsa-1024"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    EC_P521 = "ec-p521"
    EC_SECP256K1 = "ec-secp256k1"
    ED25519 = "ed25519"


_CURVES: dict[KeySpec, ec.EllipticCurve] = {
    KeySpec.EC_P256: ec.SECP256R1(),
    KeySpec.EC_P384: ec.SECP384R1(),
    KeySpec.EC_P521: ec.SECP521R1(),
    KeySpec.EC_SECP256K1: ec.SECP256K1(),
}


def generate_key(spec: KeySpec) -> PrivateKey:
    """A fresh private key of the given kind.

    Args:
        spec: Algorithm and size.

    Returns:
        A new private key (RSA-4096 takes about a second; EC and Ed25519 are instant).
    """
    if spec is KeySpec.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if spec in _CURVES:
        return ec.generate_private_key(_CURVES[spec])
    bits = int(spec.value.split("-")[1])
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def shared_key(spec: KeySpec) -> PrivateKey:
    """One key per kind, generated once per process and reused (the fast path).

    Args:
        spec: Algorithm and size.

    Returns:
        The same private key object for every call with the same ``spec``.
    """
    return generate_key(spec)


def _name(common_name: str | None, organization: str | None = None) -> x509.Name:
    attributes: list[x509.NameAttribute[str]] = []
    if organization is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if common_name is not None:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _signing_hash(key: PrivateKey, signature_hash: str) -> _SigningHash | None:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if signature_hash in _OID_DER_RSA_LEGACY:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"signature_hash {signature_hash!r} needs an RSA issuer key")
        return _HASHES["sha256"]
    try:
        return _HASHES[signature_hash]
    except KeyError:
        known = ", ".join([*_HASHES, *_OID_DER_RSA_LEGACY])
        raise ValueError(f"signature_hash must be one of {known}, not {signature_hash!r}") from None


def _sign(
    builder: x509.CertificateBuilder, key: PrivateKey, signature_hash: str
) -> x509.Certificate:
    certificate = builder.sign(key, _signing_hash(key, signature_hash))
    if signature_hash not in _OID_DER_RSA_LEGACY:
        return certificate
    if not isinstance(key, rsa.RSAPrivateKey):  # checked in _signing_hash; narrows the type
        raise ValueError(f"signature_hash {signature_hash!r} needs an RSA issuer key")
    legacy_oid, legacy_hash = _OID_DER_RSA_LEGACY[signature_hash]
    der = certificate.public_bytes(serialization.Encoding.DER)
    tbs = certificate.tbs_certificate_bytes
    legacy_tbs = tbs.replace(_OID_DER_RSA_SHA256, legacy_oid, 1)
    signature = key.sign(legacy_tbs, padding.PKCS1v15(), legacy_hash)
    head, tail = der.split(tbs, 1)
    tail = tail.replace(_OID_DER_RSA_SHA256, legacy_oid, 1).replace(
        certificate.signature, signature
    )
    return x509.load_der_x509_certificate(head + legacy_tbs + tail)


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCert:
    """A certificate and its private key.

    Attributes:
        certificate: The parsed certificate.
        private_key: Its private key.
    """

    certificate: x509.Certificate
    private_key: PrivateKey

    @property
    def der(self) -> bytes:
        """The certificate in DER."""
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The private key, unencrypted PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def sha256_hex(self) -> str:
        """SHA-256 fingerprint of the DER, lower-case hex."""
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def chain_der(self, *issuers: IssuedCert | CertificateAuthority) -> tuple[bytes, ...]:
        """This certificate followed by ``issuers``, in DER, as a server sends them."""
        return (self.der, *(_issued(i).der for i in issuers))

    def chain_pem(self, *issuers: IssuedCert | CertificateAuthority) -> bytes:
        """This certificate followed by ``issuers``, concatenated PEM."""
        return self.pem + b"".join(_issued(i).pem for i in issuers)

    def write(
        self, directory: Path, stem: str, *issuers: IssuedCert | CertificateAuthority
    ) -> tuple[Path, Path]:
        """Write ``<stem>.pem`` (this certificate + ``issuers``) and ``<stem>.key``.

        Args:
            directory: Where to write (a temporary directory; it must exist).
            stem: File name without extension.
            *issuers: Certificates to append after this one, in order.

        Returns:
            The certificate-chain path and the key path (the key file is mode 0600).
        """
        cert_path = directory / f"{stem}.pem"
        key_path = directory / f"{stem}.key"
        cert_path.write_bytes(self.chain_pem(*issuers))
        key_path.touch(mode=0o600)
        key_path.write_bytes(self.key_pem)
        return cert_path, key_path


def _issued(item: IssuedCert | CertificateAuthority) -> IssuedCert:
    return item.issued if isinstance(item, CertificateAuthority) else item


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateAuthority:
    """A CA (root or intermediate) that issues certificates.

    Attributes:
        issued: The CA's own certificate and key.
        now_utc: The time default validity periods are computed from.
        signature_hash: Hash for signatures this CA makes (``"sha256"`` by default).
    """

    issued: IssuedCert
    now_utc: datetime
    signature_hash: str = "sha256"

    @property
    def certificate(self) -> x509.Certificate:
        """The CA certificate."""
        return self.issued.certificate

    @property
    def private_key(self) -> PrivateKey:
        """The CA private key."""
        return self.issued.private_key

    @property
    def der(self) -> bytes:
        """The CA certificate in DER."""
        return self.issued.der

    @property
    def pem(self) -> bytes:
        """The CA certificate in PEM."""
        return self.issued.pem

    @classmethod
    def root(
        cls,
        *,
        common_name: str = "certvigil Test Root CA",
        organization: str | None = "certvigil test PKI",
        key: KeySpec | PrivateKey = KeySpec.EC_P256,
        now_utc: datetime | None = None,
        not_before_utc: datetime | None = None,
        not_after_utc: datetime | None = None,
        signature_hash: str = "sha256",
    ) -> CertificateAuthority:
        """A new self-signed root CA.

        Args:
            common_name: Subject CN.
            organization: Subject O, ``None`` for none.
            key: A key kind to generate, or a key to use.
            now_utc: Reference time for default validity (default: the clock).
            not_before_utc: Start of validity (default: ``now_utc`` - 1 day).
            not_after_utc: End of validity (default: ``now_utc`` + 10 years).
            signature_hash: Hash of the root's self-signature and of what it issues.

        Returns:
            The root CA.
        """
        now = now_utc or datetime.now(UTC)
        private_key = generate_key(key) if isinstance(key, KeySpec) else key
        name = _name(common_name, organization)
        public_key = private_key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before_utc or now - timedelta(days=1))
            .not_valid_after(not_after_utc or now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        certificate = _sign(builder, private_key, signature_hash)
        return cls(
            issued=IssuedCert(certificate=certificate, private_key=private_key),
            now_utc=now,
            signature_hash=signature_hash,
        )

    def intermediate(
        self,
        *,
        common_name: str = "certvigil Test Intermediate CA",
        organization: str | None = "certvigil test PKI",
        key: KeySpec | PrivateKey = KeySpec.EC_P256,
        not_before_utc: datetime | None = None,
        not_after_utc: datetime | None = None,
        path_length: int | None = 0,
        ocsp_urls: Sequence[str] = (),
        ca_issuer_urls: Sequence[str] = (),
        crl_urls: Sequence[str] = (),
        signature_hash: str | None = None,
        name_constraints: x509.NameConstraints | None = None,
    ) -> CertificateAuthority:
        """A subordinate CA issued by this one.

        Args:
            common_name: Subject CN.
            organization: Subject O, ``None`` for none.
            key: A key kind to generate, or a key to use.
            not_before_utc: Start of validity (default: ``now_utc`` - 1 day).
            not_after_utc: End of validity (default: ``now_utc`` + 5 years).
            path_length: basicConstraints pathLenConstraint.
            ocsp_urls: AIA OCSP URLs to embed.
            ca_issuer_urls: AIA CA Issuers URLs to embed.
            crl_urls: CRL distribution point URLs to embed.
            signature_hash: Hash for this signature (default: this CA's).
            name_constraints: A nameConstraints extension to add (critical).

        Returns:
            The intermediate CA (it signs with the same hash as this CA by default).
        """
        private_key = generate_key(key) if isinstance(key, KeySpec) else key
        public_key = private_key.public_key()
        builder = (
            self._builder(
                subject=_name(common_name, organization),
                public_key=public_key,
                not_before_utc=not_before_utc,
                not_after_utc=not_after_utc or self.now_utc + timedelta(days=1825),
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if name_constraints is not None:
            builder = builder.add_extension(name_constraints, critical=True)
        builder = _add_urls(builder, ocsp_urls, ca_issuer_urls, crl_urls)
        hash_name = signature_hash or self.signature_hash
        certificate = _sign(builder, self.private_key, hash_name)
        return CertificateAuthority(
            issued=IssuedCert(certificate=certificate, private_key=private_key),
            now_utc=self.now_utc,
            signature_hash=self.signature_hash,
        )

    def issue_leaf(
        self,
        *,
        dns_names: Sequence[str] = ("localhost",),
        ip_addresses: Sequence[str] = (),
        emails: Sequence[str] = (),
        uris: Sequence[str] = (),
        common_name: str | None = None,
        organization: str | None = None,
        include_san: bool = True,
        key: KeySpec | PrivateKey = KeySpec.EC_P256,
        not_before_utc: datetime | None = None,
        not_after_utc: datetime | None = None,
        valid_days: float = 90,
        ocsp_urls: Sequence[str] = (),
        ca_issuer_urls: Sequence[str] = (),
        crl_urls: Sequence[str] = (),
        must_staple: bool = False,
        is_ca: bool = False,
        extended_key_usage: Sequence[x509.ObjectIdentifier] | None = (
            ExtendedKeyUsageOID.SERVER_AUTH,
        ),
        policy_oids: Sequence[str] = ("2.23.140.1.2.1",),
        signature_hash: str | None = None,
        serial_number: int | None = None,
    ) -> IssuedCert:
        """An end-entity certificate issued by this CA.

        Args:
            dns_names: DNS SANs (U-labels are converted to A-labels; wildcards as given).
            ip_addresses: IP SANs, v4 or v6 text.
            emails: rfc822Name SANs.
            uris: URI SANs.
            common_name: Subject CN (default: the first DNS name, else the first IP).
            organization: Subject O, ``None`` for none.
            include_san: ``False`` leaves out the subjectAltName extension entirely.
            key: A key kind to generate, or a key to reuse (fast path).
            not_before_utc: Start of validity (default: ``now_utc`` - 1 day).
            not_after_utc: End of validity (default: ``not_before_utc + valid_days``).
            valid_days: Validity length when ``not_after_utc`` is not given.
            ocsp_urls: AIA OCSP URLs to embed.
            ca_issuer_urls: AIA CA Issuers URLs to embed.
            crl_urls: CRL distribution point URLs to embed.
            must_staple: Add the TLS Feature extension with status_request.
            is_ca: Mark the leaf as a CA (an oddity to detect).
            extended_key_usage: EKU purposes; ``None`` leaves the extension out.
            policy_oids: certificatePolicies OIDs (DV by default; empty for none).
            signature_hash: ``"sha256"``/``"sha384"``/``"sha512"``, or ``"sha1"``/``"md5"``
                when this CA has an RSA key (default: this CA's hash).
            serial_number: Serial number (default: random).

        Returns:
            The leaf and its key.
        """
        private_key = generate_key(key) if isinstance(key, KeySpec) else key
        public_key = private_key.public_key()
        if common_name is None:
            common_name = next(iter([*dns_names, *ip_addresses]), None)
        start = not_before_utc or self.now_utc - timedelta(days=1)
        builder = self._builder(
            subject=_name(common_name, organization),
            public_key=public_key,
            not_before_utc=start,
            not_after_utc=not_after_utc or start + timedelta(days=valid_days),
            serial_number=serial_number,
        )
        builder = builder.add_extension(
            x509.BasicConstraints(ca=is_ca, path_length=None), critical=True
        )
        if is_ca:
            builder = builder.add_extension(_ca_key_usage(), critical=True)
        else:
            builder = builder.add_extension(
                _leaf_key_usage(private_key),
                critical=True,
            )
        if extended_key_usage is not None:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(list(extended_key_usage)), critical=False
            )
        if include_san:
            names = _general_names(dns_names, ip_addresses, emails, uris)
            builder = builder.add_extension(
                x509.SubjectAlternativeName(names), critical=common_name is None
            )
        if policy_oids:
            builder = builder.add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in policy_oids]
                ),
                critical=False,
            )
        if must_staple:
            builder = builder.add_extension(
                x509.TLSFeature([x509.TLSFeatureType.status_request]), critical=False
            )
        builder = _add_urls(builder, ocsp_urls, ca_issuer_urls, crl_urls)
        certificate = _sign(builder, self.private_key, signature_hash or self.signature_hash)
        return IssuedCert(certificate=certificate, private_key=private_key)

    def issue_leaves(
        self,
        names: Sequence[str],
        *,
        key: KeySpec | PrivateKey = KeySpec.EC_P256,
        valid_days: float = 90,
    ) -> Iterator[IssuedCert]:
        """Many leaves quickly: one shared key, one DNS name each (for benchmarks).

        Args:
            names: One DNS name per leaf.
            key: A key kind (one key of that kind is generated and shared) or a key.
            valid_days: Validity of each leaf.

        Yields:
            One leaf per name, in order (about 0.1 ms each with the default EC key).
        """
        private_key = shared_key(key) if isinstance(key, KeySpec) else key
        for name in names:
            yield self.issue_leaf(dns_names=(name,), key=private_key, valid_days=valid_days)

    def _builder(
        self,
        *,
        subject: x509.Name,
        public_key: CertificatePublicKeyTypes,
        not_before_utc: datetime | None,
        not_after_utc: datetime,
        serial_number: int | None = None,
    ) -> x509.CertificateBuilder:
        issuer_public = self.private_key.public_key()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(serial_number or x509.random_serial_number())
            .not_valid_before(not_before_utc or self.now_utc - timedelta(days=1))
            .not_valid_after(not_after_utc)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public),
                critical=False,
            )
        )


def self_signed_leaf(
    *,
    dns_names: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = (),
    common_name: str | None = None,
    key: KeySpec | PrivateKey = KeySpec.EC_P256,
    now_utc: datetime | None = None,
    not_before_utc: datetime | None = None,
    not_after_utc: datetime | None = None,
    valid_days: float = 365,
    signature_hash: str = "sha256",
) -> IssuedCert:
    """A self-signed end-entity certificate (the classic appliance certificate).

    Args:
        dns_names: DNS SANs.
        ip_addresses: IP SANs.
        common_name: Subject CN (default: the first DNS name, else the first IP).
        key: A key kind to generate, or a key to use.
        now_utc: Reference time for default validity (default: the clock).
        not_before_utc: Start of validity (default: ``now_utc`` - 1 day).
        not_after_utc: End of validity (default: ``not_before_utc + valid_days``).
        valid_days: Validity length when ``not_after_utc`` is not given.
        signature_hash: Hash of the self-signature.

    Returns:
        The certificate and its key.
    """
    now = now_utc or datetime.now(UTC)
    private_key = generate_key(key) if isinstance(key, KeySpec) else key
    if common_name is None:
        common_name = next(iter([*dns_names, *ip_addresses]), None)
    name = _name(common_name)
    start = not_before_utc or now - timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after_utc or start + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(_general_names(dns_names, ip_addresses, (), ())),
            critical=False,
        )
    )
    certificate = _sign(builder, private_key, signature_hash)
    return IssuedCert(certificate=certificate, private_key=private_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrowawayPki:
    """A root and one intermediate, ready to issue leaves: the common case in one object.

    Attributes:
        root: The self-signed root CA (the anchor to trust).
        intermediate: The issuing CA, signed by ``root``.
        leaf_key: A key shared by leaves issued through :meth:`issue_leaf` unless
            another is given (keeps test suites fast).
    """

    root: CertificateAuthority
    intermediate: CertificateAuthority
    leaf_key: PrivateKey = field(default_factory=lambda: shared_key(KeySpec.EC_P256))

    @classmethod
    def create(
        cls,
        *,
        now_utc: datetime | None = None,
        key: KeySpec = KeySpec.EC_P256,
        root_name: str = "certvigil Test Root CA",
        intermediate_name: str = "certvigil Test Intermediate CA",
        intermediate_ca_issuer_urls: Sequence[str] = (),
        intermediate_ocsp_urls: Sequence[str] = (),
        intermediate_crl_urls: Sequence[str] = (),
    ) -> ThrowawayPki:
        """A new root and intermediate.

        Args:
            now_utc: Reference time for default validity (default: the clock).
            key: Key kind for both CAs.
            root_name: Root CN.
            intermediate_name: Intermediate CN.
            intermediate_ca_issuer_urls: AIA CA Issuers URLs in the intermediate
                (where the root could be fetched).
            intermediate_ocsp_urls: AIA OCSP URLs in the intermediate.
            intermediate_crl_urls: CRL distribution points in the intermediate.

        Returns:
            The PKI.
        """
        root = CertificateAuthority.root(common_name=root_name, key=key, now_utc=now_utc)
        intermediate = root.intermediate(
            common_name=intermediate_name,
            key=key,
            ca_issuer_urls=intermediate_ca_issuer_urls,
            ocsp_urls=intermediate_ocsp_urls,
            crl_urls=intermediate_crl_urls,
        )
        return cls(root=root, intermediate=intermediate)

    @property
    def now_utc(self) -> datetime:
        """The reference time of this PKI."""
        return self.root.now_utc

    def issue_leaf(self, **options: Any) -> IssuedCert:
        """A leaf from the intermediate; options as :meth:`CertificateAuthority.issue_leaf`.

        The leaf reuses :attr:`leaf_key` unless ``key`` is given.
        """
        options.setdefault("key", self.leaf_key)
        return self.intermediate.issue_leaf(**options)

    def served_chain_der(self, leaf: IssuedCert) -> tuple[bytes, ...]:
        """What a well-configured server sends: the leaf, then the intermediate."""
        return leaf.chain_der(self.intermediate)


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage(key: PrivateKey) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _dns_a_label(name: str) -> str:
    if name.isascii():
        return name
    labels = name.split(".")
    prefix = ["*"] if labels[0] == "*" else []
    rest = ".".join(labels[len(prefix) :])
    return ".".join([*prefix, idna.encode(rest, uts46=True).decode("ascii")])


def _general_names(
    dns_names: Sequence[str],
    ip_addresses: Sequence[str],
    emails: Sequence[str],
    uris: Sequence[str],
) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(_dns_a_label(n)) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    names += [x509.RFC822Name(e) for e in emails]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    return names


def _add_urls(
    builder: x509.CertificateBuilder,
    ocsp_urls: Sequence[str],
    ca_issuer_urls: Sequence[str],
    crl_urls: Sequence[str],
) -> x509.CertificateBuilder:
    access = [
        x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u)
        )
        for u in ocsp_urls
    ] + [
        x509.AccessDescription(
            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u)
        )
        for u in ca_issuer_urls
    ]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl_urls:
        points = [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(u)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
            for u in crl_urls
        ]
        builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
    return builder
