"""The frozen results of analysis: certificate facts, chain verdicts, findings, reports."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from certvigil.analysis.revocation_model import RevocationReport
from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.targets.target import Target

if TYPE_CHECKING:  # deep_assessment imports this module
    from certvigil.analysis.deep_assessment import DeepAssessment
    from certvigil.observed.endpoint import EndpointObservation


class Severity(StrEnum):
    """How much a finding matters; ordered OK < INFO < WARNING < CRITICAL."""

    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for OK up to 3 for CRITICAL, for comparisons."""
        return _RANK[self]


_RANK = {Severity.OK: 0, Severity.INFO: 1, Severity.WARNING: 2, Severity.CRITICAL: 3}


def worst(severities: Iterable[Severity]) -> Severity:
    """The most severe of ``severities``; OK when there are none."""
    return max(severities, key=lambda s: s.rank, default=Severity.OK)


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One thing wrong (or worth knowing) about an endpoint or certificate.

    Attributes:
        code: Stable identifier, a ``FindingCode`` member (``analysis.codes``; table in
            docs/finding-codes.md). Typed ``str`` because findings read back from a
            store written by an older release may carry a code since retired.
        severity: How much it matters.
        message: One human sentence naming the certificate or fact concerned.
        cert_index: Position in the served chain of the certificate concerned
            (0 = leaf), ``None`` when it concerns the endpoint as a whole.
    """

    code: str
    severity: Severity
    message: str
    cert_index: int | None = None


class KeyType(StrEnum):
    """Public key algorithms."""

    RSA = "rsa"
    EC = "ec"
    ED25519 = "ed25519"
    ED448 = "ed448"
    DSA = "dsa"
    OTHER = "other"


class ValidationLevel(StrEnum):
    """Certificate validation level from CA/B Forum policy OIDs."""

    DV = "dv"
    OV = "ov"
    IV = "iv"
    EV = "ev"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateFacts:
    """Everything read off one certificate; no judgement.

    Attributes:
        subject: RFC 4514 subject DN ("" when the subject is empty).
        subject_cn: The subject common name, ``None`` when absent.
        issuer: RFC 4514 issuer DN.
        issuer_cn: The issuer common name, ``None`` when absent.
        serial_hex: Serial number, lower-case hex without separators.
        not_before_utc: Start of validity (aware UTC).
        not_after_utc: End of validity (aware UTC).
        validity_days: Length of the validity period in whole days.
        sha256_hex: SHA-256 fingerprint of the DER, lower-case hex.
        sha1_hex: SHA-1 fingerprint of the DER, lower-case hex.
        san_dns: DNS names from subjectAltName (as encoded, A-labels).
        san_ip: IP addresses from subjectAltName, in canonical text form.
        san_email: rfc822Name entries.
        san_uri: URI entries.
        key_type: Public key algorithm.
        key_bits: Key size in bits (RSA modulus, EC curve size, 256 for Ed25519).
        key_curve: Named curve (``"secp256r1"``), ``None`` for non-EC keys.
        signature_algorithm: Signature algorithm name (``"sha256WithRSAEncryption"``)
            or the dotted OID when unknown.
        signature_hash: The hash of the signature (``"sha256"``), ``None`` for
            Ed25519/Ed448 or unknown.
        is_self_signed: Subject equals issuer and the signature verifies with its own key.
        is_ca: basicConstraints cA is true.
        path_length: basicConstraints pathLenConstraint, ``None`` when absent.
        is_precertificate: Carries the CT poison extension.
        ocsp_urls: AIA OCSP responder URLs.
        ca_issuer_urls: AIA CA Issuers URLs.
        crl_urls: CRL distribution point URLs.
        sct_count: Number of embedded SCTs (0 when no SCT list extension).
        must_staple: TLS Feature extension asks for status_request.
        policy_oids: certificatePolicies OIDs, dotted.
        validation_level: DV / OV / IV / EV from the policy OIDs.
        key_usage: keyUsage bits that are set, by name.
        extended_key_usage: extendedKeyUsage purposes, by name or dotted OID.
        subject_key_id_hex: Subject Key Identifier, hex; ``None`` when absent.
        authority_key_id_hex: Authority Key Identifier keyIdentifier, hex; ``None``.
        version: X.509 version number (1 or 3).
        parse_problems: Parts of the certificate that could not be read (a negative
            serial, a malformed extension), one sentence each; the fields those parts
            feed keep their defaults. Empty for a well-formed certificate.
    """

    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    serial_hex: str
    not_before_utc: datetime
    not_after_utc: datetime
    validity_days: int
    sha256_hex: str
    sha1_hex: str
    san_dns: tuple[str, ...] = ()
    san_ip: tuple[str, ...] = ()
    san_email: tuple[str, ...] = ()
    san_uri: tuple[str, ...] = ()
    key_type: KeyType
    key_bits: int
    key_curve: str | None = None
    signature_algorithm: str
    signature_hash: str | None = None
    is_self_signed: bool
    is_ca: bool
    path_length: int | None = None
    is_precertificate: bool = False
    ocsp_urls: tuple[str, ...] = ()
    ca_issuer_urls: tuple[str, ...] = ()
    crl_urls: tuple[str, ...] = ()
    sct_count: int = 0
    must_staple: bool = False
    policy_oids: tuple[str, ...] = ()
    validation_level: ValidationLevel = ValidationLevel.UNKNOWN
    key_usage: tuple[str, ...] = ()
    extended_key_usage: tuple[str, ...] = ()
    subject_key_id_hex: str | None = None
    authority_key_id_hex: str | None = None
    version: int = 3
    parse_problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainReport:
    """The verdict on the served chain.

    Attributes:
        is_trusted: A path from the leaf to a trust anchor verified at ``now``.
        verified_path_sha256: SHA-256 (hex) of each certificate on the verified path,
            leaf first, anchor last; empty when no path verified.
        error: Why no path verified, in words a person can act on: the root cause
            ("the leaf ... is self-signed ...", "... issued by "X", which is not in the
            trust store", "the leaf ... expired on ..."); ``None`` when a path verified.
        is_complete: The server sent every intermediate needed (no AIA fetch needed).
        fetched_issuers_sha256: Intermediates fetched from AIA CA Issuers URLs to
            complete the chain (SHA-256 hex); empty when none were needed or found.
        would_verify_with_fetched: With the fetched intermediates, the chain verifies.
        is_ordered: Each served certificate is issued by the next one.
        unneeded_sha256: Served certificates that are not on the verified path
            (the root itself, stray or duplicate certificates).
        anchor_subject: Subject of the trust anchor reached, ``None`` when untrusted.
        missing_issuer: RFC 4514 DN of an issuer that is neither served, fetched nor
            trusted (the missing intermediate), ``None`` when no issuer is missing.
        missing_issuer_urls: AIA CA Issuers URLs of the certificate naming
            ``missing_issuer``: where to fetch it from.
        error_detail: The verifier's own reason when no path verified (its wording,
            for experts and bug reports), ``None`` otherwise.
        trusted_ignoring_validity: The served chain verifies when the validation time
            is moved inside the certificates' validity periods: trust fails only
            because of time (an expired or not yet valid certificate), so renewing
            alone fixes it. True when the chain is trusted.
        untrusted_causes: The codes of the findings that say why the served chain is not
            trusted, root causes only (``("expired",)``, ``("self_signed",)``,
            ``("weak_signature",)``); empty when it is trusted. The alert rules use
            them to raise one alert per cause.
    """

    is_trusted: bool
    verified_path_sha256: tuple[str, ...] = ()
    error: str | None = None
    is_complete: bool = True
    fetched_issuers_sha256: tuple[str, ...] = ()
    would_verify_with_fetched: bool = False
    is_ordered: bool = True
    unneeded_sha256: tuple[str, ...] = ()
    anchor_subject: str | None = None
    missing_issuer: str | None = None
    missing_issuer_urls: tuple[str, ...] = ()
    error_detail: str | None = None
    trusted_ignoring_validity: bool = False
    untrusted_causes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointReport:
    """The judgement on one endpoint: what it served and what is wrong with it.

    Attributes:
        target: What was probed.
        evaluated_at_utc: The ``now`` the analysis used (aware UTC).
        observation: The handshake, ``None`` when the probe failed.
        failure: The probe failure, ``None`` when the handshake succeeded.
        certificates: Facts for each served certificate, in the server's order.
        chain: The chain verdict, ``None`` when nothing was served.
        hostname_matches: The leaf covers ``target.expected_name``; ``None`` when
            there is no leaf.
        findings: Everything found, most severe first.
        revocation: The revocation verdict (``--deep`` or ``--checks revocation``),
            ``None`` when revocation was not checked.
        deep: The protocol, cipher and grade assessment (``scan --deep``,
            ``certvigil grade``), ``None`` when it was not run.
        observed: Everything the probes saw that this report judges (handshake, AIA
            issuers, revocation fetches, protocol probes): what the store keeps and
            ``certvigil rejudge`` judges again. ``None`` for a report not made by
            ``certvigil.analysis.judge.judge``.
    """

    target: Target
    evaluated_at_utc: datetime
    observation: TlsObservation | None = None
    failure: ProbeFailure | None = None
    certificates: tuple[CertificateFacts, ...] = ()
    chain: ChainReport | None = None
    hostname_matches: bool | None = None
    findings: tuple[Finding, ...] = ()
    revocation: RevocationReport | None = None
    deep: DeepAssessment | None = None
    observed: EndpointObservation | None = None

    @property
    def verdict(self) -> Severity:
        """The worst finding's severity (a probe failure is told by ``is_failed``)."""
        return worst([f.severity for f in self.findings])

    @property
    def is_failed(self) -> bool:
        """The endpoint could not be observed."""
        return self.failure is not None

    @property
    def leaf(self) -> CertificateFacts | None:
        """The first served certificate, ``None`` when nothing was served."""
        return self.certificates[0] if self.certificates else None
