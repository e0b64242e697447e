"""Verify one OCSP response or one CRL against a certificate and its issuer; pure.

Freshness: an answer is stale once ``now`` is past nextUpdate by more than
``CLOCK_SKEW`` or its thisUpdate is ahead of ``now`` by more than ``CLOCK_SKEW``. An
answer without nextUpdate (RFC 6960 §4.2.2.1: "newer information is always available")
is taken as fresh for ``MAX_AGE_WITHOUT_NEXT_UPDATE`` after its thisUpdate, then stale.

Out of scope (reported as ``INVALID_RESPONSE`` with a detail saying so): delta CRLs,
indirect CRLs and CRLs partitioned by reason; OCSP responders trusted by local
configuration rather than by delegation from the issuer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import SignatureAlgorithmOID

from certvigil.analysis.certificate import PARSE_ERRORS, parsed_of, signature_verifies
from certvigil.analysis.revocation_model import MethodResult, RevocationStatus
from certvigil.observed.revocation import RevocationMethod

CLOCK_SKEW = timedelta(minutes=5)
"""Tolerance for clocks that disagree: thisUpdate may lie this far in the future and
nextUpdate this far in the past before an answer counts as stale."""

MAX_AGE_WITHOUT_NEXT_UPDATE = timedelta(days=7)
"""How long after thisUpdate an answer without nextUpdate stays fresh (the CA/Browser
Forum caps OCSP validity at 10 days; a week leaves room without trusting it forever)."""


def check_ocsp_response(
    response_der: bytes,
    *,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    method: RevocationMethod = RevocationMethod.OCSP,
    url: str | None = None,
) -> MethodResult:
    """Verify one OCSP response for ``cert`` and read its status.

    Checks, in order: it parses; responseStatus is successful; a SingleResponse
    matches the CertID (serial, issuer name hash, issuer key hash); the signer is the
    issuer, or a responder certificate included in the response, issued and signed
    by the issuer, carrying id-kp-OCSPSigning and valid at ``now``; the signature
    verifies; thisUpdate/nextUpdate are fresh.

    Args:
        response_der: The DER OCSPResponse.
        cert: The certificate asked about.
        issuer: Its issuer.
        now: Evaluation time (aware UTC).
        method: ``OCSP`` or ``OCSP_STAPLE``, recorded in the result.
        url: The responder URL, recorded in the result.

    Returns:
        The method result; never raises on bad input.
    """

    try:
        return _check_ocsp_response(response_der, cert, issuer, now, method, url)
    except PARSE_ERRORS as exc:
        # cryptography reads parts of a response lazily (single responses, embedded
        # certificates, extensions), so a defect may surface only here.
        return _Answer(method=method, url=url).result(
            RevocationStatus.INVALID_RESPONSE, f"the OCSP response cannot be read: {exc}"
        )


def _check_ocsp_response(
    response_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    method: RevocationMethod,
    url: str | None,
) -> MethodResult:
    answer = _Answer(method=method, url=url)
    invalid = RevocationStatus.INVALID_RESPONSE
    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError as exc:
        return answer.result(invalid, f"the OCSP response does not parse: {exc}")
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        name = response.response_status.name.lower()
        return answer.result(invalid, f"the OCSP responder answered {name!r} instead of a status")
    single = _matching_single_response(response, cert, issuer)
    if single is None:
        return answer.result(
            invalid, "the OCSP response is not for this certificate (CertID differs)"
        )
    signer_error, signed_by = _verify_ocsp_signer(response, issuer, now)
    if signer_error is not None:
        return answer.result(invalid, signer_error)
    answer = _Answer(
        method=method,
        url=url,
        this_update_utc=single.this_update_utc,
        next_update_utc=single.next_update_utc,
        signed_by=signed_by,
    )
    stale = _staleness(single.this_update_utc, single.next_update_utc, now)
    status = single.certificate_status
    if status is ocsp.OCSPCertStatus.REVOKED:
        return answer.revoked(single.revocation_time_utc, single.revocation_reason, stale)
    if stale is not None:
        return answer.result(RevocationStatus.STALE_RESPONSE, f"the OCSP response {stale}")
    if status is ocsp.OCSPCertStatus.UNKNOWN:
        return answer.result(RevocationStatus.UNKNOWN, "the OCSP responder does not know it")
    signer = (signed_by or "").replace("_", " ")
    return answer.result(RevocationStatus.GOOD, f"OCSP says good (signed by the {signer})")


def check_crl(
    crl_der: bytes,
    *,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    url: str | None = None,
) -> MethodResult:
    """Verify one CRL against ``issuer`` and look ``cert`` up in it.

    Checks: it parses (DER, or PEM); it is a complete, direct CRL (no delta, indirect or
    reason-partitioned CRL); its issuer name is the certificate's issuer; its signature
    verifies with the issuer's key; its scope covers the certificate; thisUpdate and
    nextUpdate are fresh; then the serial is looked up.

    Args:
        crl_der: The CRL, DER (PEM accepted).
        cert: The certificate to look up.
        issuer: Its issuer, whose key must have signed the CRL.
        now: Evaluation time (aware UTC).
        url: The distribution point, recorded in the result.

    Returns:
        The method result; never raises on bad input.
    """

    try:
        return _check_crl(crl_der, cert, issuer, now, url)
    except PARSE_ERRORS as exc:
        # Extensions and entries of a CRL are parsed lazily: a defect may surface here.
        return _Answer(method=RevocationMethod.CRL, url=url).result(
            RevocationStatus.INVALID_RESPONSE, f"the CRL cannot be read: {exc}"
        )


def _check_crl(
    crl_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    now: datetime,
    url: str | None,
) -> MethodResult:
    answer = _Answer(method=RevocationMethod.CRL, url=url)
    invalid = RevocationStatus.INVALID_RESPONSE
    try:
        if crl_der.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(crl_der)
        else:
            crl = x509.load_der_x509_crl(crl_der)
    except ValueError as exc:
        return answer.result(invalid, f"the CRL does not parse: {exc}")
    unsupported = _unsupported_crl_kind(crl, cert)
    if unsupported is not None:
        return answer.result(invalid, unsupported)
    if crl.issuer != cert.issuer or crl.issuer != issuer.subject:
        issuer_name = crl.issuer.rfc4514_string()
        return answer.result(
            invalid, f"the CRL is issued by {issuer_name!r}, not the certificate's issuer"
        )
    issuer_key = parsed_of(issuer).public_key
    if issuer_key is None:
        return answer.result(invalid, "the issuer's public key cannot be read")
    try:
        signature_ok = crl.is_signature_valid(issuer_key)  # type: ignore[arg-type]
    except PARSE_ERRORS as exc:
        return answer.result(invalid, f"the CRL signature cannot be checked: {exc}")
    if not signature_ok:
        return answer.result(invalid, "the CRL signature does not verify with the issuer's key")
    answer = _Answer(
        method=RevocationMethod.CRL,
        url=url,
        this_update_utc=crl.last_update_utc,
        next_update_utc=crl.next_update_utc,
        signed_by="issuer",
    )
    stale = _staleness(crl.last_update_utc, crl.next_update_utc, now)
    entry = crl.get_revoked_certificate_by_serial_number(parsed_of(cert).serial_number)
    if entry is not None:
        return answer.revoked(entry.revocation_date_utc, _crl_entry_reason(entry), stale)
    if stale is not None:
        return answer.result(RevocationStatus.STALE_RESPONSE, f"the CRL {stale}")
    return answer.result(RevocationStatus.GOOD, "not listed on the issuer-signed CRL")


# --- helpers: OCSP ---------------------------------------------------------------------


def _matching_single_response(
    response: ocsp.OCSPResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> ocsp.OCSPSingleResponse | None:
    for single in response.responses:
        if single.serial_number != parsed_of(cert).serial_number:
            continue
        try:
            # Build the CertID we would send with the response's hash and compare.
            expected = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, issuer, single.hash_algorithm)
                .build()
            )
        except (ValueError, UnsupportedAlgorithm):
            continue
        if (
            expected.issuer_name_hash == single.issuer_name_hash
            and expected.issuer_key_hash == single.issuer_key_hash
        ):
            return single
    return None


def _key_hash(cert: x509.Certificate) -> bytes | None:
    # RFC 6960 ResponderID byKey: SHA-1 of the subjectPublicKey BIT STRING, which is
    # exactly RFC 5280's method-1 key identifier.
    key = parsed_of(cert).public_key
    if key is None:
        return None
    try:
        return x509.SubjectKeyIdentifier.from_public_key(key).digest
    except PARSE_ERRORS:
        return None


def _is_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = _key_hash(cert)
    return key_hash is not None and response.responder_key_hash == key_hash


def _verify_ocsp_signer(
    response: ocsp.OCSPResponse, issuer: x509.Certificate, now: datetime
) -> tuple[str | None, str | None]:
    """``(error, None)`` when the signer is not acceptable, ``(None, signed_by)`` otherwise."""
    if _is_responder(response, issuer):
        if _signature_ok(parsed_of(issuer).public_key, response):
            return None, "issuer"
        return "the OCSP response signature does not verify with the issuer's key", None
    delegate = next((c for c in response.certificates if _is_responder(response, c)), None)
    if delegate is None:
        return (
            "the OCSP response is signed by neither the issuer nor a responder certificate"
            " it includes",
            None,
        )
    responder, issuer_parsed = parsed_of(delegate), parsed_of(issuer)
    if responder.issuer_der != issuer_parsed.subject_der or not signature_verifies(
        responder, issuer_parsed
    ):
        return "the OCSP responder certificate is not issued by the certificate's issuer", None
    if "OCSPSigning" not in responder.facts.extended_key_usage:
        return "the OCSP responder certificate lacks the id-kp-OCSPSigning purpose", None
    if not delegate.not_valid_before_utc <= now <= delegate.not_valid_after_utc:
        return "the OCSP responder certificate is outside its validity period", None
    if not _signature_ok(responder.public_key, response):
        return "the OCSP response signature does not verify with the responder's key", None
    return None, "delegated_responder"


def _signature_ok(public_key: object, response: ocsp.OCSPResponse) -> bool:
    data = response.tbs_response_bytes
    signature = response.signature
    try:
        algorithm = response.signature_hash_algorithm
        if isinstance(public_key, rsa.RSAPublicKey):
            if algorithm is None:
                return False
            if response.signature_algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
                pad: padding.AsymmetricPadding = padding.PSS(
                    mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size
                )
            else:
                pad = padding.PKCS1v15()
            public_key.verify(signature, data, pad, algorithm)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            if algorithm is None:
                return False
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, dsa.DSAPublicKey):
            if algorithm is None:
                return False
            public_key.verify(signature, data, algorithm)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


# --- helpers: CRL ----------------------------------------------------------------------


def _unsupported_crl_kind(
    crl: x509.CertificateRevocationList, cert: x509.Certificate
) -> str | None:
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        return "the distribution point serves a delta CRL, which certvigil does not apply"
    try:
        idp = crl.extensions.get_extension_for_class(x509.IssuingDistributionPoint).value
    except x509.ExtensionNotFound:
        return None
    if idp.indirect_crl:
        return "the distribution point serves an indirect CRL, which certvigil does not apply"
    if idp.only_some_reasons is not None:
        return "the CRL covers only some revocation reasons, which certvigil does not apply"
    if idp.only_contains_attribute_certs:
        return "the CRL covers attribute certificates only"
    is_ca = _is_ca(cert)
    if idp.only_contains_ca_certs and not is_ca:
        return "the CRL covers CA certificates only, and this is an end-entity certificate"
    if idp.only_contains_user_certs and is_ca:
        return "the CRL covers end-entity certificates only, and this is a CA certificate"
    return None


def _is_ca(cert: x509.Certificate) -> bool:
    return parsed_of(cert).facts.is_ca


def _crl_entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


# --- helpers: shared -------------------------------------------------------------------


def _staleness(this_update: datetime, next_update: datetime | None, now: datetime) -> str | None:
    """Why an answer is stale, ``None`` when it is fresh."""
    if this_update > now + CLOCK_SKEW:
        return f"has thisUpdate {this_update.isoformat()} in the future"
    expiry = next_update if next_update is not None else this_update + MAX_AGE_WITHOUT_NEXT_UPDATE
    if now > expiry + CLOCK_SKEW:
        what = "nextUpdate" if next_update is not None else "thisUpdate (no nextUpdate) + 7 days"
        return f"expired: {what} was {expiry.isoformat()}"
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """What is known of one answer so far, to stamp onto its ``MethodResult``."""

    method: RevocationMethod
    url: str | None
    this_update_utc: datetime | None = None
    next_update_utc: datetime | None = None
    signed_by: str | None = None

    def result(
        self,
        status: RevocationStatus,
        detail: str,
        *,
        revoked_at_utc: datetime | None = None,
        revocation_reason: str | None = None,
    ) -> MethodResult:
        return MethodResult(
            method=self.method,
            status=status,
            url=self.url,
            detail=detail,
            revoked_at_utc=revoked_at_utc,
            revocation_reason=revocation_reason,
            this_update_utc=self.this_update_utc,
            next_update_utc=self.next_update_utc,
            signed_by=self.signed_by,
        )

    def revoked(
        self, revoked_at: datetime | None, reason: x509.ReasonFlags | None, stale: str | None
    ) -> MethodResult:
        # A verified revocation stays true after the answer goes stale: revocation is
        # final, except certificateHold, which may be lifted.
        if stale is not None and reason is x509.ReasonFlags.certificate_hold:
            return self.result(RevocationStatus.STALE_RESPONSE, f"on hold, but the answer {stale}")
        when = revoked_at.isoformat() if revoked_at is not None else "an unknown time"
        reason_name = reason.name if reason is not None else None
        detail = f"revoked at {when}" + (f" ({reason_name})" if reason_name else "")
        if stale is not None:
            detail += f"; the answer {stale}"
        return self.result(
            RevocationStatus.REVOKED,
            detail,
            revoked_at_utc=revoked_at,
            revocation_reason=reason_name,
        )


def ocsp_response_matches(
    response_der: bytes, cert: x509.Certificate, issuer: x509.Certificate
) -> bool:
    """Whether a successful OCSP response carries a status for ``cert`` (by CertID)."""
    try:
        response = ocsp.load_der_ocsp_response(response_der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return False
        return _matching_single_response(response, cert, issuer) is not None
    except PARSE_ERRORS:
        return False
