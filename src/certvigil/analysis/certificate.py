"""Read the facts off one DER certificate, degrading field by field on malformed parts.

This module is the one place that reads the lazily parsed parts of a certificate
(extensions, names, key, signature algorithm): cryptography parses them on first access
and raises there, with exceptions that are not all ``ValueError``
(``DuplicateExtension``, ``UnsupportedGeneralNameType``, ``UnsupportedAlgorithm``...).
:func:`parse_certificate` reads each of them once, under :data:`PARSE_ERRORS`, turning
what cannot be read into ``parse_problems``; the rest of certvigil works from the
resulting :class:`ParsedCertificate` (facts, public key, extension OIDs, and the
guarded signature check :func:`signature_verifies`) and never touches them itself.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from certvigil.analysis.bounded import make_room
from certvigil.analysis.der import split_extensions, tbs_names
from certvigil.analysis.model import CertificateFacts, KeyType, ValidationLevel
from certvigil.errors import CertificateLoadError

__all__ = [
    "PARSE_ERRORS",
    "ParsedCertificate",
    "certificate_facts",
    "forget_certificates",
    "keep_certificates",
    "kept_certificates",
    "parse_certificate",
    "parsed_of",
    "read_certificate_facts",
    "signature_verifies",
]

_DV = "2.23.140.1.2.1"
_OV = "2.23.140.1.2.2"
_IV = "2.23.140.1.2.3"
_EV = "2.23.140.1.1"

# CA-specific EV policy OIDs that predate (or accompany) the CA/B Forum's 2.23.140.1.1,
# as listed in the browsers' EV root metadata.
_CA_EV_OIDS = frozenset(
    {
        "2.16.840.1.114412.2.1",  # DigiCert
        "2.16.840.1.114028.10.1.2",  # Entrust
        "1.3.6.1.4.1.4146.1.1",  # GlobalSign
        "1.3.6.1.4.1.6449.1.2.1.5.1",  # Sectigo (Comodo)
        "2.16.840.1.114413.1.7.23.3",  # GoDaddy
        "2.16.840.1.114414.1.7.23.3",  # Starfield
        "2.16.840.1.113733.1.7.23.6",  # VeriSign / Symantec
        "2.16.840.1.113733.1.7.48.1",  # thawte
        "1.3.6.1.4.1.14370.1.6",  # GeoTrust
        "1.3.6.1.4.1.8024.0.2.100.1.2",  # QuoVadis
        "2.16.578.1.26.1.3.3",  # Buypass
        "2.16.756.1.89.1.2.1.1",  # SwissSign
        "1.3.159.1.17.1",  # Actalis
        "1.3.6.1.4.1.782.1.2.1.8.1",  # Network Solutions
        "1.2.616.1.113527.2.5.1.1",  # Certum
        "1.3.6.1.4.1.7879.13.24.1",  # T-TeleSec
        "2.16.840.1.114404.1.1.2.4.1",  # Trustwave
        "1.2.392.200091.100.721.1",  # SECOM
        "1.3.6.1.4.1.6334.1.100.1",  # Cybertrust
        "1.3.6.1.4.1.4788.2.202.1",  # D-TRUST
        "1.3.6.1.4.1.14777.6.1.1",  # Izenpe
        "1.3.6.1.4.1.14777.6.1.2",  # Izenpe
        "1.3.6.1.4.1.34697.2.1",  # AffirmTrust
        "1.3.6.1.4.1.34697.2.2",  # AffirmTrust
        "1.3.6.1.4.1.34697.2.3",  # AffirmTrust
        "1.3.6.1.4.1.34697.2.4",  # AffirmTrust
    }
)

# OpenSSL's long names, so that reports read like `openssl x509 -text`.
_SIGNATURE_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "md5WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "sha1WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA224: "sha224WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA256: "sha256WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "sha384WithRSAEncryption",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "sha512WithRSAEncryption",
    SignatureAlgorithmOID.RSASSA_PSS: "rsassaPss",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "ecdsa-with-SHA1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA224: "ecdsa-with-SHA224",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ecdsa-with-SHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ecdsa-with-SHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ecdsa-with-SHA512",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "dsaWithSHA1",
    SignatureAlgorithmOID.DSA_WITH_SHA256: "dsa_with_SHA256",
    SignatureAlgorithmOID.ED25519: "ED25519",
    SignatureAlgorithmOID.ED448: "ED448",
}

_EKU_NAMES = {
    "1.3.6.1.5.5.7.3.1": "serverAuth",
    "1.3.6.1.5.5.7.3.2": "clientAuth",
    "1.3.6.1.5.5.7.3.3": "codeSigning",
    "1.3.6.1.5.5.7.3.4": "emailProtection",
    "1.3.6.1.5.5.7.3.8": "timeStamping",
    "1.3.6.1.5.5.7.3.9": "OCSPSigning",
    "2.5.29.37.0": "anyExtendedKeyUsage",
    "1.3.6.1.4.1.311.10.3.3": "msSGC",
    "2.16.840.1.113730.4.1": "nsSGC",
    "1.3.6.1.4.1.11129.2.4.4": "certificateTransparency",
}

_KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)

_ONE_SECOND = timedelta(seconds=1)
_T = TypeVar("_T")
PARSE_ERRORS: tuple[type[Exception], ...] = (
    KeyError,
    ValueError,
    TypeError,
    OverflowError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.UnsupportedGeneralNameType,
    x509.DuplicateExtension,
)
"""What cryptography raises on well-framed but unreadable parts of a certificate.

``ValueError`` covers every ASN.1 parse error; ``DuplicateExtension`` (an extension
twice, which RFC 5280 forbids) and ``UnsupportedGeneralNameType`` derive from
``Exception`` only; ``KeyError`` comes from an unknown TLS Feature value (e.g. 0)
failing its enum lookup inside cryptography; ``OverflowError`` from a huge integer
(a path length) that does not fit a machine word."""
_PARSE_ERRORS = PARSE_ERRORS
_SIGNATURE_ERRORS: tuple[type[Exception], ...] = (InvalidSignature, *PARSE_ERRORS)


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedCertificate:
    """A certificate parsed once: its DER, cryptography's object and its facts.

    Attributes:
        der: The DER bytes as received.
        certificate: cryptography's parsed certificate (its outer structure, names,
            serial and validity are read; read anything else through this object's
            other attributes, which are guarded).
        facts: Everything read off it.
        issuer_der: The DER of the issuer name, ``b""`` when it cannot be located.
        subject_der: The DER of the subject name, ``b""`` when it cannot be located.
        public_key: The subject public key, ``None`` when it cannot be read.
        extension_oids: The dotted OID of every extension present, readable or not,
            in order; ``None`` when the extension list itself cannot be walked.
        serial_number: The serial number (read once: cryptography warns on every read
            of a zero or negative one).
    """

    der: bytes
    certificate: x509.Certificate
    facts: CertificateFacts
    issuer_der: bytes = b""
    subject_der: bytes = b""
    public_key: CertificatePublicKeyTypes | None = None
    extension_oids: tuple[str, ...] | None = ()
    serial_number: int = 0

    def may_have_issued(self, child: ParsedCertificate) -> bool:
        """This certificate's subject is ``child``'s issuer and the key ids agree."""
        if not self.subject_der or self.subject_der != child.issuer_der:
            return False
        aki = child.facts.authority_key_id_hex
        ski = self.facts.subject_key_id_hex
        return aki is None or ski is None or aki == ski


def read_certificate_facts(der: bytes) -> CertificateFacts:
    """Everything that can be read off one certificate, without judgement.

    A certificate whose outer structure parses but whose parts do not (a negative
    serial, a malformed extension) still yields facts: the unreadable parts keep their
    defaults and are described in ``parse_problems``.

    Args:
        der: One DER-encoded X.509 certificate.

    Returns:
        The facts.

    Raises:
        CertificateLoadError: The bytes are not a certificate at all (with the reason);
            its ``source`` is ``"certificate"``, callers that know better re-raise.
    """
    return certificate_facts(der)[1]


@lru_cache(maxsize=512)
def parse_certificate(der: bytes) -> ParsedCertificate:
    """Parse one DER certificate and read its facts; cached by content.

    Intermediates are shared by thousands of endpoints, so a scan parses each one once
    while it is in use (the cache holds the most recent 512: enough for the
    intermediates of a scan, small enough that a sweep of unique leaves does not fill
    memory in each scan process).

    Args:
        der: One DER-encoded X.509 certificate.

    Returns:
        The parsed certificate with its facts.

    Raises:
        CertificateLoadError: The bytes are not a certificate (source ``"certificate"``).
    """
    problems: list[str] = []
    # cryptography warns (and pytest turns warnings into errors) about negative serials
    # and similar legacy encodings; they become parse problems instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            certificate = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion) as exc:
            raise CertificateLoadError("certificate", _reason(exc)) from exc
        try:
            issuer_der, subject_der = tbs_names(der)
        except ValueError:
            issuer_der, subject_der = b"", b""
        reading = _Reading(der, certificate, problems)
        facts = _read_facts(reading, issuer_der, subject_der)
        serial_number = certificate.serial_number
    for warning in caught:
        problems.append(_warning_problem(str(warning.message), serial_number > 0))
    if problems:
        facts = _with_problems(facts, problems)
    return ParsedCertificate(
        der=der,
        certificate=certificate,
        facts=facts,
        issuer_der=issuer_der,
        subject_der=subject_der,
        public_key=reading.public_key,
        extension_oids=reading.extension_oids,
        serial_number=serial_number,
    )


_KEPT_FACTS: dict[bytes, tuple[bytes, CertificateFacts]] = {}
_KEPT_LOCK = threading.Lock()
_kept_limit = 4096


def keep_certificates(limit: int) -> None:
    """Set how many certificates' facts (and, per trust store, chain verdicts) to keep.

    A process that judges the same fleet again and again (the server, reported every
    cycle by its agents) sets this above the fleet's distinct certificates, so that a
    certificate seen before is neither parsed nor verified again. Each kept certificate
    costs 2 to 3 KiB (its facts, findings and chain verdict); a one-off scan keeps the
    default, 4,096, enough for the certificates a scan's endpoints share.

    Args:
        limit: Certificates to keep, at least 1; the oldest kept go first.

    Raises:
        ValueError: ``limit`` is below 1.
    """
    global _kept_limit
    if limit < 1:
        raise ValueError("keep at least one certificate")
    with _KEPT_LOCK:
        _kept_limit = limit
        make_room(_KEPT_FACTS, limit + 1)


def kept_certificates() -> int:
    """The limit :func:`keep_certificates` set."""
    return _kept_limit


def forget_certificates() -> None:
    """Let go of every kept and parsed certificate (a benchmark's cold start)."""
    with _KEPT_LOCK:
        _KEPT_FACTS.clear()
    parse_certificate.cache_clear()


def certificate_facts(der: bytes) -> tuple[bytes, CertificateFacts]:
    """One certificate's SHA-256 digest and its facts, kept by digest.

    The facts are those of :func:`parse_certificate`, which runs only the first time a
    certificate is met (or after it was let go: see :func:`keep_certificates`). A kept
    certificate costs a digest and a lookup, and its bytes are not kept.

    Args:
        der: One DER-encoded X.509 certificate.

    Returns:
        The digest (32 bytes) and the facts.

    Raises:
        CertificateLoadError: The bytes are not a certificate (source ``"certificate"``).
    """
    digest = hashlib.sha256(der).digest()
    kept = _KEPT_FACTS.get(digest)
    if kept is None:
        # The kept pair hands out one digest object per certificate: the chain verdicts
        # keyed by it share it instead of holding copies.
        kept = (digest, parse_certificate(der).facts)
        with _KEPT_LOCK:
            # Oldest first: a fleet larger than the limit should raise the limit.
            make_room(_KEPT_FACTS, _kept_limit)
            _KEPT_FACTS[digest] = kept
    return kept


def parsed_of(certificate: x509.Certificate) -> ParsedCertificate:
    """The guarded reading of a certificate cryptography has already loaded.

    For certificates that arrive as objects (trust anchors, a responder certificate in
    an OCSP response); cached by DER like :func:`parse_certificate`.

    Args:
        certificate: A loaded certificate.

    Returns:
        Its parsed form.

    Raises:
        CertificateLoadError: Only if cryptography cannot load again the DER it wrote.
    """
    return parse_certificate(certificate.public_bytes(Encoding.DER))


def signature_verifies(child: ParsedCertificate, issuer: ParsedCertificate) -> bool:
    """``issuer``'s key verifies ``child``'s signature; ``False`` for anything unreadable.

    RSA (PKCS#1 v1.5 and PSS) and ECDSA signatures are checked by hand so that SHA-1
    and MD5 signatures (old roots and intermediates) are recognised; other kinds go
    through cryptography's ``verify_directly_issued_by``, which also wants the names to
    match. Callers match the names first (by DER, as the issuer lookup does).
    """
    return _signature_verifies(child.certificate, issuer.public_key, issuer.certificate)


def _signature_verifies(
    cert: x509.Certificate, key: CertificatePublicKeyTypes | None, issuer: x509.Certificate
) -> bool:
    if key is None:
        return False
    try:
        hash_algorithm = cert.signature_hash_algorithm
        if isinstance(key, rsa.RSAPublicKey) and hash_algorithm is not None:
            key.verify(
                cert.signature, cert.tbs_certificate_bytes, _rsa_padding(cert), hash_algorithm
            )
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and hash_algorithm is not None:
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))
            return True
        cert.verify_directly_issued_by(issuer)
    except _SIGNATURE_ERRORS:
        return False
    return True


class _Reading:
    """One certificate being read: the parts read so far and the problems met."""

    def __init__(self, der: bytes, certificate: x509.Certificate, problems: list[str]) -> None:
        self.der = der
        self.certificate = certificate
        self.problems = problems
        self.public_key: CertificatePublicKeyTypes | None = None
        self.extension_oids: tuple[str, ...] | None = ()


def _warning_problem(message: str, serial_positive: bool) -> str:
    if "serial number" in message and "positive" in message:
        if serial_positive:
            # The certificate's own serial is fine: the zero or negative one is the
            # authorityCertSerialNumber in the authority key identifier.
            return "the authority key identifier holds a zero or negative serial number"
        return "the serial number is zero or negative (RFC 5280 requires a positive one)"
    return message.split(". ")[0]


def _with_problems(facts: CertificateFacts, problems: list[str]) -> CertificateFacts:
    return dataclasses.replace(facts, parse_problems=tuple(dict.fromkeys(problems)))


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _attempt(problems: list[str], what: str, default: _T, read: Callable[[], _T]) -> _T:
    try:
        return read()
    except _PARSE_ERRORS as exc:
        problems.append(f"{what} could not be read: {_reason(exc)}")
        return default


def _read_facts(reading: _Reading, issuer_der: bytes, subject_der: bytes) -> CertificateFacts:
    der, cert, problems = reading.der, reading.certificate, reading.problems
    extensions = _read_extensions(reading)
    subject_text, subject_cn = _name_texts(subject_der, "subject", lambda: cert.subject, problems)
    issuer_text, issuer_cn = _name_texts(issuer_der, "issuer", lambda: cert.issuer, problems)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    reading.public_key = _attempt(problems, "public key", None, cert.public_key)
    key_type, key_bits, key_curve = _key_facts(reading.public_key)
    signature_oid = cert.signature_algorithm_oid
    hash_algorithm = _attempt(problems, "signature hash", None, lambda: _signature_hash(cert))
    policies = _policy_oids(extensions)
    san = extensions.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    san_dns = _san_values(san, x509.DNSName)
    problems += [
        f"the DNS name {name!r} in the subjectAltName holds a control character or a space"
        for name in san_dns
        if any(ord(c) < 0x21 or ord(c) == 0x7F for c in name)
    ]
    constraints = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
    aia = extensions.get(ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    return CertificateFacts(
        subject=subject_text,
        subject_cn=subject_cn,
        issuer=issuer_text,
        issuer_cn=issuer_cn,
        serial_hex=_attempt(problems, "serial number", "", lambda: _serial_hex(cert)),
        not_before_utc=not_before,
        not_after_utc=not_after,
        validity_days=(not_after - not_before + _ONE_SECOND).days,
        sha256_hex=hashlib.sha256(der).hexdigest(),
        sha1_hex=hashlib.sha1(der).hexdigest(),
        san_dns=san_dns,
        san_ip=tuple(str(ip) for ip in _san_values(san, x509.IPAddress)),
        san_email=_san_values(san, x509.RFC822Name),
        san_uri=_san_values(san, x509.UniformResourceIdentifier),
        key_type=key_type,
        key_bits=key_bits,
        key_curve=key_curve,
        signature_algorithm=_SIGNATURE_NAMES.get(signature_oid, signature_oid.dotted_string),
        signature_hash=hash_algorithm,
        is_self_signed=(
            bool(subject_der) and subject_der == issuer_der and _is_self_signed(reading)
        ),
        is_ca=bool(constraints is not None and constraints.ca),
        path_length=constraints.path_length if constraints is not None else None,
        is_precertificate=ExtensionOID.PRECERT_POISON in extensions,
        ocsp_urls=_shared(_access_urls(aia, x509.oid.AuthorityInformationAccessOID.OCSP)),
        ca_issuer_urls=_shared(
            _access_urls(aia, x509.oid.AuthorityInformationAccessOID.CA_ISSUERS)
        ),
        crl_urls=_shared(_crl_urls(extensions.get(ExtensionOID.CRL_DISTRIBUTION_POINTS))),
        sct_count=_sct_count(extensions, problems),
        must_staple=_must_staple(extensions.get(ExtensionOID.TLS_FEATURE)),
        policy_oids=_shared(policies),
        validation_level=_validation_level(policies),
        key_usage=_shared(_key_usage(extensions.get(ExtensionOID.KEY_USAGE))),
        extended_key_usage=_shared(
            _extended_key_usage(extensions.get(ExtensionOID.EXTENDED_KEY_USAGE))
        ),
        subject_key_id_hex=_subject_key_id(extensions.get(ExtensionOID.SUBJECT_KEY_IDENTIFIER)),
        authority_key_id_hex=_shared(
            _authority_key_id(extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER))
        ),
        version=_attempt(problems, "version", 3, lambda: cert.version.value + 1),
    )


# Values every leaf of a CA repeats (its key id, URLs, policies, key usages): one object
# each, so that the facts a server keeps for a fleet do not hold thousands of copies.
_SHARED: dict[object, object] = {}
_SHARED_MAX = 8192


def _shared(value: _T) -> _T:
    found = _SHARED.get(value)
    if found is None:
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.clear()
        _SHARED[value] = value
        return value
    return found  # type: ignore[return-value]  # equal to value, so of its type


def _read_extensions(reading: _Reading) -> Mapping[x509.ObjectIdentifier, Any]:
    """Extension values by OID; on a malformed extension, every other one still.

    A repeated extension (which cryptography refuses as a whole) is named as a problem,
    and its first occurrence is the one read.
    """
    problems = reading.problems
    try:
        values = {ext.oid: ext.value for ext in reading.certificate.extensions}
    except _PARSE_ERRORS as exc:
        whole_failure = _reason(exc)
    else:
        reading.extension_oids = tuple(oid.dotted_string for oid in values)
        return values
    try:
        singles = split_extensions(reading.der)
    except ValueError as exc:
        problems.append(f"extensions could not be read: {whole_failure} ({_reason(exc)})")
        reading.extension_oids = None
        return {}
    reading.extension_oids = tuple(oid for oid, _ in singles)
    values = {}
    seen: set[str] = set()
    for oid, single_der in singles:
        if oid in seen:
            problems.append(
                f"extension {_extension_name(oid)} appears more than once (RFC 5280 allows "
                "one of each; the first is read)"
            )
            continue
        seen.add(oid)
        try:
            key = x509.ObjectIdentifier(oid)
        except ValueError as exc:
            problems.append(f"extension {_printable(oid)} could not be read: {_reason(exc)}")
            continue
        try:
            (ext,) = x509.load_der_x509_certificate(single_der).extensions
        except _PARSE_ERRORS as exc:
            problems.append(f"extension {oid} could not be read: {_reason(exc)}")
            continue
        values[key] = ext.value
    return values


def _extension_name(dotted: str) -> str:
    try:
        name = getattr(x509.ObjectIdentifier(dotted), "_name", "Unknown OID")
    except ValueError:
        return _printable(dotted)
    return dotted if name == "Unknown OID" else f"{dotted} ({name})"


def _printable(text: str) -> str:
    return text if len(text) <= 64 else text[:61] + "..."


# Issuer names repeat across every leaf a CA issues, and building cryptography's Name
# objects is the dearest part of reading a leaf: their texts are cached by DER.
_NAME_TEXTS: dict[bytes, tuple[str, str | None]] = {}
_NAME_TEXTS_MAX = 8192


def _name_texts(
    name_der: bytes, what: str, read: Callable[[], x509.Name], problems: list[str]
) -> tuple[str, str | None]:
    """RFC 4514 text and CN of a name, from the cache or by parsing it once."""
    cached = _NAME_TEXTS.get(name_der)
    if cached is not None:
        return cached
    name = _attempt(problems, what, None, read)
    texts = (_rfc4514(name), _common_name(name))
    if name is not None:
        if len(_NAME_TEXTS) >= _NAME_TEXTS_MAX:
            _NAME_TEXTS.clear()
        _NAME_TEXTS[name_der] = texts
    return texts


def _rfc4514(name: x509.Name | None) -> str:
    if name is None:
        return ""
    try:
        return name.rfc4514_string()
    except ValueError:
        return repr(name)


def _common_name(name: x509.Name | None) -> str | None:
    if name is None:
        return None
    attributes = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _serial_hex(cert: x509.Certificate) -> str:
    serial = cert.serial_number
    if serial < 0:
        # Two's complement of the encoded bytes, as the DER holds it and openssl prints it.
        size = (serial.bit_length() + 8) // 8
        return serial.to_bytes(size, "big", signed=True).hex()
    text = f"{serial:x}"
    return text if len(text) % 2 == 0 else "0" + text


def _key_facts(key: CertificatePublicKeyTypes | None) -> tuple[KeyType, int, str | None]:
    if isinstance(key, rsa.RSAPublicKey):
        return KeyType.RSA, key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return KeyType.EC, key.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeyType.ED25519, 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return KeyType.ED448, 456, None
    if isinstance(key, dsa.DSAPublicKey):
        return KeyType.DSA, key.key_size, None
    return KeyType.OTHER, 0, None


def _signature_hash(cert: x509.Certificate) -> str | None:
    algorithm = cert.signature_hash_algorithm
    return None if algorithm is None else algorithm.name


def _is_self_signed(reading: _Reading) -> bool:
    """The signature verifies under the certificate's own key (names already equal)."""
    # By hand for RSA and ECDSA, so that SHA-1 and MD5 self-signatures (old roots) count.
    return _signature_verifies(reading.certificate, reading.public_key, reading.certificate)


def _rsa_padding(cert: x509.Certificate) -> padding.AsymmetricPadding:
    pss = cert.signature_algorithm_parameters
    return pss if isinstance(pss, padding.PSS) else padding.PKCS1v15()


def _san_values(san: x509.SubjectAlternativeName | None, kind: type[Any]) -> tuple[Any, ...]:
    return () if san is None else tuple(san.get_values_for_type(kind))


def _access_urls(
    aia: x509.AuthorityInformationAccess | None, method: x509.ObjectIdentifier
) -> tuple[str, ...]:
    if aia is None:
        return ()
    return tuple(
        d.access_location.value
        for d in aia
        if d.access_method == method
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    )


def _crl_urls(points: x509.CRLDistributionPoints | None) -> tuple[str, ...]:
    if points is None:
        return ()
    return tuple(
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    )


def _sct_count(extensions: Mapping[x509.ObjectIdentifier, Any], problems: list[str]) -> int:
    scts = extensions.get(ExtensionOID.PRECERT_SIGNED_CERTIFICATE_TIMESTAMPS)
    if scts is None:
        return 0
    return _attempt(problems, "SCT list", 0, lambda: len(scts))


def _must_staple(feature: x509.TLSFeature | None) -> bool:
    return feature is not None and x509.TLSFeatureType.status_request in feature


def _policy_oids(extensions: Mapping[x509.ObjectIdentifier, Any]) -> tuple[str, ...]:
    policies = extensions.get(ExtensionOID.CERTIFICATE_POLICIES)
    if policies is None:
        return ()
    return tuple(p.policy_identifier.dotted_string for p in policies)


def _validation_level(policy_oids: tuple[str, ...]) -> ValidationLevel:
    oids = set(policy_oids)
    if _EV in oids or oids & _CA_EV_OIDS:
        return ValidationLevel.EV
    if _OV in oids:
        return ValidationLevel.OV
    if _IV in oids:
        return ValidationLevel.IV
    if _DV in oids:
        return ValidationLevel.DV
    return ValidationLevel.UNKNOWN


def _key_usage(usage: x509.KeyUsage | None) -> tuple[str, ...]:
    if usage is None:
        return ()
    names = [bit for bit in _KEY_USAGE_BITS if getattr(usage, bit)]
    if usage.key_agreement:
        names += [bit for bit in ("encipher_only", "decipher_only") if getattr(usage, bit)]
    return tuple(names)


def _extended_key_usage(usage: x509.ExtendedKeyUsage | None) -> tuple[str, ...]:
    if usage is None:
        return ()
    return tuple(_EKU_NAMES.get(o.dotted_string, o.dotted_string) for o in usage)


def _subject_key_id(ski: x509.SubjectKeyIdentifier | None) -> str | None:
    return None if ski is None else ski.digest.hex()


def _authority_key_id(aki: x509.AuthorityKeyIdentifier | None) -> str | None:
    if aki is None or aki.key_identifier is None:
        return None
    return aki.key_identifier.hex()


def signature_is_weak(facts: CertificateFacts) -> bool:
    """The signature uses MD5 or SHA-1 (or MD2/MD4, seen on very old certificates)."""
    if facts.signature_hash in {"md5", "sha1"}:
        return True
    return facts.signature_algorithm in {"1.2.840.113549.1.1.2", "1.2.840.113549.1.1.3"}


def is_valid_at(facts: CertificateFacts, now: datetime) -> bool:
    """``now`` lies within the validity period (both ends inclusive, RFC 5280)."""
    return facts.not_before_utc <= now <= facts.not_after_utc
