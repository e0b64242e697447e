"""Ask an OCSP responder about one certificate over HTTP (RFC 6960 appendix A, RFC 5019)."""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Callable
from datetime import datetime

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certvigil.observed.revocation import (
    FetchFailure,
    FetchFailureKind,
    RevocationFetch,
    RevocationMethod,
)
from certvigil.probe.capped_http import HttpLimits, capped_request

GET_MAX_ENCODED_BYTES = 255
"""RFC 5019 §5: use GET when the encoded request is under 255 bytes, POST otherwise
(GET answers can be cached by HTTP proxies and CDNs in front of the responder)."""


def build_ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """The DER OCSPRequest for ``cert``, with a SHA-1 CertID and no nonce.

    SHA-1 is what RFC 5019 responders (every public CA's) index by; a nonce would defeat
    their pre-signed, cached answers.
    """
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    return request.public_bytes(Encoding.DER)


def ocsp_get_url(responder_url: str, request_der: bytes) -> str:
    """The GET form: the responder URL, ``/``, then the URL-encoded base64 request."""
    encoded = urllib.parse.quote(base64.b64encode(request_der).decode("ascii"), safe="")
    return responder_url.rstrip("/") + "/" + encoded


async def fetch_ocsp(
    responder_url: str,
    request_der: bytes,
    *,
    http: httpx.AsyncClient,
    limits: HttpLimits,
    clock: Callable[[], datetime],
    prefer_post: bool = False,
) -> RevocationFetch:
    """Send one OCSP request, by GET when short enough, else by POST.

    Never raises for network problems: they come back in ``failure``.

    Args:
        responder_url: The AIA OCSP URL.
        request_der: From ``build_ocsp_request``.
        http: The caller's client.
        limits: Time and size limits.
        clock: Current time (aware UTC), stamped on the record.
        prefer_post: POST even a short request (for responders that mishandle GET).

    Returns:
        The fetch record with the raw response bytes, or the classified failure.
    """
    get_url = ocsp_get_url(responder_url, request_der)
    encoded_length = len(get_url) - len(responder_url.rstrip("/")) - 1
    fetched_at = clock()
    started = time.perf_counter()
    if encoded_length < GET_MAX_ENCODED_BYTES and not prefer_post:
        http_method = "GET"
        body = await capped_request(http, "GET", get_url, limits=limits)
    else:
        http_method = "POST"
        body = await capped_request(
            http,
            "POST",
            responder_url,
            limits=limits,
            content=request_der,
            headers={"Content-Type": "application/ocsp-request"},
        )
    elapsed = time.perf_counter() - started
    if isinstance(body, bytes) and not body:
        body = FetchFailure(kind=FetchFailureKind.MALFORMED, detail="empty body")
    return RevocationFetch(
        method=RevocationMethod.OCSP,
        url=responder_url,
        fetched_at_utc=fetched_at,
        response_der=body if isinstance(body, bytes) else None,
        failure=body if isinstance(body, FetchFailure) else None,
        elapsed_s=elapsed,
        http_method=http_method,
    )
