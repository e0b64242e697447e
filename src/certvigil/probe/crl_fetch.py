"""Download CRLs from HTTP distribution points, through a cache shared by a whole scan
(and, in the daemon, by its cycles, which also keeps OCSP answers there).

Every endpoint whose certificates come from one issuer names the same distribution
point; a scan of a thousand such endpoints downloads its CRL once. ``CrlCache`` keeps
each CRL until its nextUpdate (the issuer promises no newer one before then, RFC 5280
§5.1.2.5) and makes concurrent requests for one URL share a single download.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certvigil.analysis.certificate import PARSE_ERRORS
from certvigil.observed.revocation import (
    FetchFailure,
    FetchFailureKind,
    RevocationFetch,
    RevocationMethod,
)
from certvigil.probe.capped_http import HttpLimits, capped_request


@dataclass(frozen=True, slots=True, kw_only=True)
class _Download:
    der: bytes | None
    failure: FetchFailure | None
    fetched_at_utc: datetime
    elapsed_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class _Entry:
    der: bytes
    fetched_at_utc: datetime
    keep_until_utc: datetime


class CrlCache:
    """CRLs by URL, kept until their nextUpdate; one download per URL at a time.

    Entries hold DER bytes only. Failed downloads are not kept, but callers that asked
    while the download was running share its failure. One cache serves one event loop
    (a scan or the daemon); it does no I/O itself.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime],
        max_entries: int = 256,
        stale_keep_s: float = 300.0,
        default_keep_s: float = 3600.0,
        max_keep_s: float | None = None,
        keep_ocsp: bool = False,
    ) -> None:
        """Set the policy; nothing is fetched here.

        Args:
            clock: Current time as an aware UTC datetime (injected so tests can move it).
            max_entries: Most CRLs kept; the least recently used goes first.
            stale_keep_s: How long to keep a CRL whose nextUpdate has already passed,
                so that a scan does not download a stale CRL once per endpoint.
            default_keep_s: How long to keep a CRL without nextUpdate (or unparseable
                as a CRL, which analysis will report).
            max_keep_s: Upper bound on any entry's lifetime, ``None`` for "until
                nextUpdate" (set it to notice early re-issues of long-lived CRLs).
            keep_ocsp: Also keep successful OCSP responses that carry a nextUpdate,
                by responder and request, until then (the daemon, whose cycles ask the
                same questions again; a one-off scan asks each once).
        """
        if max_entries <= 0:
            raise ValueError(f"max_entries must be positive, not {max_entries}")
        self._clock = clock
        self._max_entries = max_entries
        self._stale_keep = timedelta(seconds=stale_keep_s)
        self._default_keep = timedelta(seconds=default_keep_s)
        self._max_keep = timedelta(seconds=max_keep_s) if max_keep_s is not None else None
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[_Download]] = {}
        self.downloads = 0
        """How many downloads the cache started (hits and shared waits are not counted)."""
        self._keep_ocsp = keep_ocsp
        self._ocsp: OrderedDict[tuple[str, bytes], _Entry] = OrderedDict()
        self.ocsp_hits = 0
        """OCSP questions answered from the cache instead of the responder."""

    def __len__(self) -> int:
        return len(self._entries)

    def cached(self, url: str) -> tuple[bytes, datetime] | None:
        """The DER and download time kept for ``url``, ``None`` when absent or expired."""
        entry = self._entries.get(url)
        if entry is None:
            return None
        if self._clock() >= entry.keep_until_utc:
            del self._entries[url]
            return None
        self._entries.move_to_end(url)
        return entry.der, entry.fetched_at_utc

    def cached_ocsp(self, url: str, request_der: bytes) -> RevocationFetch | None:
        """A kept OCSP answer to ``request_der`` from ``url``, ``None`` when none is kept
        or it reached its nextUpdate."""
        key = (url, request_der)
        entry = self._ocsp.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.keep_until_utc:
            del self._ocsp[key]
            return None
        self._ocsp.move_to_end(key)
        self.ocsp_hits += 1
        return RevocationFetch(
            method=RevocationMethod.OCSP,
            url=url,
            fetched_at_utc=entry.fetched_at_utc,
            response_der=entry.der,
            from_cache=True,
        )

    def keep_ocsp(self, url: str, request_der: bytes, fetch: RevocationFetch) -> None:
        """Keep a fetched OCSP answer until its nextUpdate (when asked to keep them).

        Only a successful response with one nextUpdate in the future is kept: one
        without promises nothing about newer information, and failures are retried.
        """
        if not self._keep_ocsp or fetch.response_der is None or fetch.failure is not None:
            return
        next_update = _ocsp_next_update(fetch.response_der)
        now = self._clock()
        if next_update is None or next_update <= now:
            return
        keep_until = next_update
        if self._max_keep is not None:
            keep_until = min(keep_until, now + self._max_keep)
        self._ocsp[(url, request_der)] = _Entry(
            der=fetch.response_der, fetched_at_utc=fetch.fetched_at_utc, keep_until_utc=keep_until
        )
        while len(self._ocsp) > self._max_entries * 64:
            self._ocsp.popitem(last=False)

    async def fetch(
        self, url: str, *, http: httpx.AsyncClient, limits: HttpLimits
    ) -> RevocationFetch:
        """The CRL at ``url``, from the cache, a download in progress, or a new download.

        Never raises for network or format problems: they come back in ``failure``.

        Args:
            url: The distribution point.
            http: The client used when a download is needed.
            limits: Time and size limits for a download.

        Returns:
            The fetch record; ``from_cache`` is true when no new download was made
            for this call.
        """
        hit = self.cached(url)
        if hit is not None:
            der, fetched_at = hit
            return RevocationFetch(
                method=RevocationMethod.CRL,
                url=url,
                fetched_at_utc=fetched_at,
                response_der=der,
                from_cache=True,
            )
        task = self._inflight.get(url)
        shared = task is not None
        if task is None:
            task = asyncio.ensure_future(self._download(url, http=http, limits=limits))
            self._inflight[url] = task
            self.downloads += 1
        # shield: a caller that gives up must not cancel the download others wait on.
        download = await asyncio.shield(task)
        return RevocationFetch(
            method=RevocationMethod.CRL,
            url=url,
            fetched_at_utc=download.fetched_at_utc,
            response_der=download.der,
            failure=download.failure,
            elapsed_s=download.elapsed_s,
            from_cache=shared,
        )

    async def _download(
        self, url: str, *, http: httpx.AsyncClient, limits: HttpLimits
    ) -> _Download:
        try:
            started = time.perf_counter()
            fetched_at = self._clock()
            body = await capped_request(http, "GET", url, limits=limits)
            elapsed = time.perf_counter() - started
            if isinstance(body, FetchFailure):
                return _Download(
                    der=None, failure=body, fetched_at_utc=fetched_at, elapsed_s=elapsed
                )
            if not body:
                failure = FetchFailure(kind=FetchFailureKind.MALFORMED, detail="empty body")
                return _Download(
                    der=None, failure=failure, fetched_at_utc=fetched_at, elapsed_s=elapsed
                )
            der, next_update = _normalise_crl(body)
            self._store(url, der, fetched_at, next_update)
            return _Download(der=der, failure=None, fetched_at_utc=fetched_at, elapsed_s=elapsed)
        finally:
            self._inflight.pop(url, None)

    def _store(
        self, url: str, der: bytes, fetched_at: datetime, next_update: datetime | None
    ) -> None:
        now = self._clock()
        if next_update is None:
            keep_until = now + self._default_keep
        elif next_update <= now:
            keep_until = now + self._stale_keep
        else:
            keep_until = next_update
        if self._max_keep is not None:
            keep_until = min(keep_until, now + self._max_keep)
        self._entries[url] = _Entry(der=der, fetched_at_utc=fetched_at, keep_until_utc=keep_until)
        self._entries.move_to_end(url)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)


def _ocsp_next_update(der: bytes) -> datetime | None:
    """The nextUpdate of a successful single OCSP response, ``None`` otherwise."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        return response.next_update_utc
    except PARSE_ERRORS:
        return None


def _normalise_crl(body: bytes) -> tuple[bytes, datetime | None]:
    """DER for a DER or PEM CRL, with its nextUpdate; unparseable bodies pass through."""
    try:
        if body.lstrip().startswith(b"-----BEGIN"):
            crl = x509.load_pem_x509_crl(body)
            return crl.public_bytes(Encoding.DER), crl.next_update_utc
        crl = x509.load_der_x509_crl(body)
        return body, crl.next_update_utc
    except PARSE_ERRORS:  # InvalidVersion is not a ValueError
        # Not a CRL: keep the bytes so analysis can say so; cache them briefly.
        return body, None
