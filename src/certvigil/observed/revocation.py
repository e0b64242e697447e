"""What the revocation probe fetched: raw OCSP/CRL bytes per certificate, or why it could not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from certvigil.targets.target import Target


class RevocationMethod(StrEnum):
    """How a revocation status was (or was to be) learnt; stable strings for JSON and the store."""

    CRL = "crl"
    OCSP = "ocsp"
    OCSP_STAPLE = "ocsp_staple"


class FetchFailureKind(StrEnum):
    """Why an OCSP response or a CRL could not be fetched."""

    UNREACHABLE = "unreachable"
    """No TCP connection or no HTTP exchange (refused, DNS failure, reset)."""
    TIMEOUT = "timeout"
    """The server did not answer within the time-out."""
    HTTP_STATUS = "http_status"
    """The server answered with a status other than 200."""
    TOO_LARGE = "too_large"
    """The body exceeded the size cap."""
    MALFORMED = "malformed"
    """The body was empty or not in a format the method uses."""
    UNSUPPORTED_URL = "unsupported_url"
    """The URL is not ``http://`` or ``https://`` (``ldap://`` distribution points)."""
    NOT_ALLOWED = "not_allowed"
    """Not fetched: the URL, one of its redirects or the address its name resolves to is
    outside the allow-list of the server that scanned on request (``serve.scan_allow``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchFailure:
    """A fetch that produced no usable bytes.

    Attributes:
        kind: The failure class.
        detail: Human-readable detail (the OS error, ``"HTTP 503"``, the size seen).
        http_status: The HTTP status when ``kind`` is ``HTTP_STATUS``, else ``None``.
    """

    kind: FetchFailureKind
    detail: str
    http_status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationFetch:
    """One attempt at one method for one certificate.

    Attributes:
        method: ``CRL`` or ``OCSP`` (stapled responses are carried by
            ``RevocationObservation.staple_der``).
        url: The distribution point or responder URL used.
        fetched_at_utc: When the bytes were obtained (aware UTC); for a CRL served
            from the cache, when it was downloaded.
        response_der: The OCSP response or CRL as DER (a PEM CRL is converted), ``None``
            when the fetch failed.
        failure: Why the fetch failed, ``None`` when it succeeded.
        elapsed_s: Seconds spent on this fetch (0 for a cache hit).
        from_cache: The CRL came from the shared cache rather than the network.
        http_method: ``"GET"`` or ``"POST"`` (OCSP); ``"GET"`` for CRLs.
    """

    method: RevocationMethod
    url: str
    fetched_at_utc: datetime
    response_der: bytes | None = None
    failure: FetchFailure | None = None
    elapsed_s: float = 0.0
    from_cache: bool = False
    http_method: str = "GET"


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateRevocationObservation:
    """The revocation fetches for one served certificate.

    Attributes:
        cert_index: Position in the served chain (0 = leaf).
        certificate_der: The certificate checked.
        issuer_der: The certificate that signed it (from the served chain or the
            caller's extra issuers), ``None`` when none was found: then no OCSP
            request could be built and no signature can be checked.
        fetches: Every CRL and OCSP fetch made for it, in the order made; empty when
            the certificate names neither a distribution point nor a responder, or when
            OCSP was not asked for this certificate.
        ocsp_skipped: The certificate names an OCSP responder that was deliberately not
            asked (intermediates, unless the options ask for them).
    """

    cert_index: int
    certificate_der: bytes
    issuer_der: bytes | None = None
    fetches: tuple[RevocationFetch, ...] = ()
    ocsp_skipped: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RevocationObservation:
    """Everything fetched to judge revocation for one endpoint's served chain.

    Attributes:
        target: The endpoint, ``None`` when a bare chain was checked.
        observed_at_utc: When the check started (aware UTC, from the caller's clock).
        certificates: One entry per served certificate that is not self-signed,
            in the server's order.
        staple_requested: The TLS probe asked for a stapled OCSP response; when
            ``False``, a missing staple says nothing.
        staple_der: The stapled OCSP response, ``None`` when none was sent (or none was
            asked for).
    """

    target: Target | None = None
    observed_at_utc: datetime
    certificates: tuple[CertificateRevocationObservation, ...] = ()
    staple_requested: bool = False
    staple_der: bytes | None = None
