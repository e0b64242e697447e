"""The frozen revocation verdicts: per method, per certificate, per endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from certvigil.observed.revocation import RevocationMethod


class RevocationStatus(StrEnum):
    """The revocation state of a certificate, or what one method could tell about it.

    Only ``GOOD`` means "checked and not revoked"; every other state except ``REVOKED``
    means the question is open.
    """

    GOOD = "good"
    """A verified, fresh answer says the certificate is not revoked."""
    REVOKED = "revoked"
    """A verified answer says the certificate is revoked."""
    UNKNOWN = "unknown"
    """The OCSP responder answered, validly, that it does not know the certificate."""
    STALE_RESPONSE = "stale_response"
    """A verified answer whose nextUpdate has passed or whose thisUpdate is in the future."""
    INVALID_RESPONSE = "invalid_response"
    """An answer that does not parse, is not for this certificate, is not successful,
    or whose signature or signer does not verify."""
    UNREACHABLE = "unreachable"
    """The responder or distribution point could not be fetched (or was too large)."""
    UNVERIFIABLE = "unverifiable"
    """The issuer of the certificate was not available, so nothing could be verified."""
    NOT_ALLOWED = "not_allowed"
    """Not fetched: the URL, a redirect or the address its name led to is outside the
    allow-list of the server that scanned on request."""
    NOT_CHECKED = "not_checked"
    """The certificate names only an OCSP responder that was deliberately not asked
    (intermediates, unless the options ask for them)."""
    NO_INFO = "no_info"
    """The certificate names no responder and no distribution point, and no staple."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MethodResult:
    """What one method said about one certificate.

    Attributes:
        method: CRL, OCSP or stapled OCSP.
        status: The verdict of this method alone.
        url: The responder or distribution point; ``None`` for a staple.
        detail: One human sentence on how the verdict was reached or why it failed.
        revoked_at_utc: Revocation time when ``status`` is ``REVOKED``, else ``None``.
        revocation_reason: The reason code name (``"key_compromise"``) when revoked
            and the source gave one, else ``None``.
        this_update_utc: thisUpdate of the answer used, ``None`` when none was read.
        next_update_utc: nextUpdate of the answer used, ``None`` when absent or unread.
        signed_by: ``"issuer"`` or ``"delegated_responder"`` for a verified OCSP answer,
            ``"issuer"`` for a verified CRL, ``None`` otherwise.
    """

    method: RevocationMethod
    status: RevocationStatus
    url: str | None = None
    detail: str = ""
    revoked_at_utc: datetime | None = None
    revocation_reason: str | None = None
    this_update_utc: datetime | None = None
    next_update_utc: datetime | None = None
    signed_by: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRevocation:
    """The combined revocation verdict on one served certificate.

    Attributes:
        cert_index: Position in the served chain (0 = leaf).
        subject: RFC 4514 subject of the certificate.
        serial_hex: Serial number, lower-case hex.
        status: The combined status (see ``docs/revocation.md`` for the rule).
        decided_by: The method whose result became ``status``; ``None`` for
            ``NO_INFO`` or ``UNVERIFIABLE`` reached without any method.
        revoked_at_utc: Revocation time when revoked, else ``None``.
        revocation_reason: Reason code name when revoked and given, else ``None``.
        methods: Every method's own result, in the order tried.
    """

    cert_index: int
    subject: str
    serial_hex: str
    status: RevocationStatus
    decided_by: RevocationMethod | None = None
    revoked_at_utc: datetime | None = None
    revocation_reason: str | None = None
    methods: tuple[MethodResult, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StapleReport:
    """The verdict on the OCSP response stapled in the handshake.

    Attributes:
        was_requested: The probe asked for a staple; when ``False`` the other fields
            say nothing.
        is_present: The server sent a staple.
        status: The staple's own verdict (``GOOD``, ``REVOKED``, ``STALE_RESPONSE``,
            ``INVALID_RESPONSE`` …); ``None`` when no staple was sent.
        is_for_leaf: The staple's CertID matches the served leaf; ``None`` when absent.
        must_staple: The leaf carries the TLS Feature status_request (must-staple).
        detail: One human sentence on the staple.
    """

    was_requested: bool
    is_present: bool
    status: RevocationStatus | None = None
    is_for_leaf: bool | None = None
    must_staple: bool = False
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationReport:
    """The revocation judgement on one endpoint's served chain.

    Findings are derived from it by ``certvigil.analysis.revocation.revocation_findings``.

    Attributes:
        evaluated_at_utc: The ``now`` the judgement used (aware UTC).
        certificates: One verdict per checked (not self-signed) certificate, in the
            server's order.
        staple: The staple verdict, ``None`` when the chain was checked without a
            handshake.
    """

    evaluated_at_utc: datetime
    certificates: tuple[CertificateRevocation, ...] = ()
    staple: StapleReport | None = None

    @property
    def is_revoked(self) -> bool:
        """Some certificate on the served chain is revoked."""
        return any(c.status is RevocationStatus.REVOKED for c in self.certificates)

    @property
    def leaf_status(self) -> RevocationStatus | None:
        """The leaf's combined status, ``None`` when the leaf was not checked."""
        for cert in self.certificates:
            if cert.cert_index == 0:
                return cert.status
        return None
