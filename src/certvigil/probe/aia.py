"""Fetch CA-issuer certificates named by AIA URLs, with a per-scan cache keyed by URL.

A server that omits an intermediate still names it in the leaf's Authority Information
Access "CA Issuers" URL (RFC 5280 §4.2.2.1). Fetching it lets analysis name what is
missing and show that the chain would verify with it. Bodies come as DER, PEM or a
PKCS #7 "certs-only" bundle; all three are accepted and returned as DER.
"""

from __future__ import annotations

import asyncio
import warnings

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from certvigil.analysis.certificate import PARSE_ERRORS
from certvigil.observed.issuers import IssuerFetch
from certvigil.probe.fenced_http import FetchNotAllowed

__all__ = ["DEFAULT_MAX_BYTES", "IssuerFetch", "IssuerFetcher", "parse_issuer_body"]

DEFAULT_MAX_BYTES = 256 * 1024
"""Largest body accepted: an issuer certificate is a few KB, a PKCS #7 bundle a few tens."""


class IssuerFetcher:
    """Fetches AIA CA-issuer URLs over HTTP, once per URL for the fetcher's lifetime.

    Concurrent requests for the same URL share one download: a scan of many endpoints
    that all miss the same intermediate fetches it once. Use one fetcher per scan, as an
    async context manager (it owns an ``httpx.AsyncClient`` unless one is given).
    """

    def __init__(
        self,
        *,
        timeout_s: float = 5.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        """Set the limits; no I/O happens until the first fetch.

        Args:
            timeout_s: Limit on each phase of a request (connect, read, pool).
            max_bytes: Largest body accepted.
            client: An HTTP client to use instead of one of the fetcher's own.
        """
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, not {timeout_s}")
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes}")
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._owns_client = client is None
        self._client = client
        self._cache: dict[str, asyncio.Future[IssuerFetch]] = {}

    async def __aenter__(self) -> IssuerFetcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if the fetcher created it."""
        if self._client is not None and self._owns_client:
            await self._client.aclose()
        self._client = None

    async def fetch(self, url: str) -> IssuerFetch:
        """The certificates at ``url``; served from the cache after the first call.

        Never raises for network or format problems: they come back in ``error``.

        Args:
            url: An ``http://`` or ``https://`` URL from an AIA extension.

        Returns:
            What the URL gave.
        """
        cached = self._cache.get(url)
        if cached is None:
            cached = asyncio.get_running_loop().create_future()
            self._cache[url] = cached
            try:
                cached.set_result(await self._download(url))
            finally:
                if not cached.done():  # the download raised or was cancelled
                    cached.cancel()
                    self._cache.pop(url, None)
        return await asyncio.shield(cached)

    async def fetch_all(self, urls: tuple[str, ...]) -> tuple[IssuerFetch, ...]:
        """``fetch`` for each URL, concurrently, in the order given."""
        return tuple(await asyncio.gather(*(self.fetch(url) for url in urls)))

    async def _download(self, url: str) -> IssuerFetch:
        if not url.lower().startswith(("http://", "https://")):
            return IssuerFetch(url=url, error="only http and https AIA URLs are fetched")
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout_s),
                follow_redirects=True,
                max_redirects=3,
                headers={"User-Agent": "certvigil"},
            )
        try:
            body = await asyncio.wait_for(self._read_capped(url), self._timeout_s * 2)
        except TimeoutError:
            return IssuerFetch(url=url, error=f"no answer within {self._timeout_s * 2:g} s")
        except FetchNotAllowed as exc:
            # Its message starts with NOT_ALLOWED_PREFIX: the judgement says what was
            # not checked.
            return IssuerFetch(url=url, error=str(exc))
        except httpx.HTTPError as exc:
            return IssuerFetch(url=url, error=f"HTTP request failed: {exc or type(exc).__name__}")
        except _FetchRefused as exc:
            return IssuerFetch(url=url, error=str(exc))
        try:
            certificates = parse_issuer_body(body)
        except ValueError as exc:
            return IssuerFetch(url=url, error=str(exc))
        return IssuerFetch(url=url, certificates_der=certificates)

    async def _read_capped(self, url: str) -> bytes:
        if self._client is None:
            raise _FetchRefused("the fetcher is closed")
        async with self._client.stream("GET", url) as response:
            if response.status_code != 200:
                raise _FetchRefused(f"HTTP status {response.status_code}")
            chunks = bytearray()
            async for chunk in response.aiter_bytes():
                chunks += chunk
                if len(chunks) > self._max_bytes:
                    raise _FetchRefused(f"body larger than {self._max_bytes} bytes")
            return bytes(chunks)


class _FetchRefused(Exception):
    """Internal: the response was not usable (status, size)."""


def parse_issuer_body(body: bytes) -> tuple[bytes, ...]:
    """The certificates in an AIA response body, as DER.

    Args:
        body: A DER certificate, PEM certificates, or a PKCS #7 certs-only bundle in DER
            or PEM.

    Returns:
        One or more DER certificates, in the order they appear.

    Raises:
        ValueError: When the body holds none of those.
    """
    if not body:
        raise ValueError("empty body")
    # cryptography warns while loading a zero or negative serial, or a BER bundle; the
    # analysis reports what matters as parse problems of each certificate, not stderr.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            return _parse_issuer_body(body)
        except ValueError:
            raise
        except PARSE_ERRORS as exc:  # InvalidVersion, UnsupportedAlgorithm: not ValueError
            raise ValueError(f"the body holds an unreadable certificate: {exc}") from exc


def _parse_issuer_body(body: bytes) -> tuple[bytes, ...]:
    stripped = body.lstrip()
    if stripped.startswith(b"-----BEGIN"):
        if b"-----BEGIN PKCS7-----" in stripped or b"-----BEGIN CMS-----" in stripped:
            certificates = pkcs7.load_pem_pkcs7_certificates(stripped)
        else:
            certificates = x509.load_pem_x509_certificates(stripped)
        return tuple(cert.public_bytes(Encoding.DER) for cert in certificates)
    try:
        return (x509.load_der_x509_certificate(body).public_bytes(Encoding.DER),)
    except ValueError:
        pass
    try:
        bundle = pkcs7.load_der_pkcs7_certificates(body)
    except ValueError as exc:
        raise ValueError(
            "the body is neither a DER or PEM certificate nor a PKCS #7 bundle"
        ) from exc
    if not bundle:
        raise ValueError("the PKCS #7 bundle holds no certificate")
    return tuple(cert.public_bytes(Encoding.DER) for cert in bundle)
