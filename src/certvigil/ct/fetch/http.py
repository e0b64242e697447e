"""A polite HTTP client for one CT log: rate limit, bounded parallelism, back-off, caps.

Every request of a log goes through its ``LogFetcher``: a token bucket holds the rate
(the log list's ``certspotter_qps`` or a configured one), a semaphore bounds the requests
in flight, 429 and 5xx answers (and timeouts and connection failures) are retried with
exponential back-off and full jitter, a ``Retry-After`` the log gives is honoured (up to a
cap), and every attempt has a deadline and a size cap that hold even against a log that
never stops sending. ``Content-Encoding: gzip`` is decoded (the size cap counts the
decoded bytes).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from certvigil.ct.errors import FetchError

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """How politely, and within which bounds, a log is read.

    Attributes:
        qps: Requests per second at most (``None``: no rate limit).
        burst: Requests the token bucket allows at once.
        parallel: Requests in flight at most.
        deadline: Seconds one attempt may take, headers and body together.
        max_bytes: Bytes one answer may have, after decoding.
        retries: Attempts after the first, for 429, 5xx, timeouts and connection errors.
        backoff_base: Seconds of the first back-off (doubled each retry, fully jittered).
        backoff_cap: Seconds a back-off never exceeds.
        max_retry_after: Seconds of a ``Retry-After`` honoured at most.
        give_up_after: Seconds one request may take with all its retries and waits: a
            retry that would start later is not made.
    """

    qps: float | None = None
    burst: int = 1
    parallel: int = 4
    deadline: float = 30.0
    max_bytes: int = 64 * 1024 * 1024
    retries: int = 6
    backoff_base: float = 0.1
    backoff_cap: float = 30.0
    max_retry_after: float = 300.0
    give_up_after: float = 600.0


class TokenBucket:
    """A token bucket: ``rate`` tokens a second, at most ``burst`` saved."""

    def __init__(self, rate: float, burst: int = 1) -> None:
        if rate <= 0:
            raise ValueError("a rate limit is a positive number of requests per second")
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._updated = time.monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class LogFetcher:
    """GET requests under one log's base URL, politely and within bounds.

    Args:
        base_url: The log's URL (RFC 6962 ``url`` or static ``monitoring_url``), ending in ``/``.
        policy: Rate, parallelism, deadline, size cap and back-off.
        client: An ``httpx.AsyncClient`` to share; one is made (and closed) otherwise.
        rng: Randomness for the jitter (seeded in tests).
    """

    def __init__(
        self,
        base_url: str,
        policy: FetchPolicy | None = None,
        *,
        client: httpx.AsyncClient | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.policy = policy or FetchPolicy()
        self._client = client
        self._own_client = client is None
        self._bucket = TokenBucket(self.policy.qps, self.policy.burst) if self.policy.qps else None
        self._slots = asyncio.Semaphore(max(1, self.policy.parallel))
        self._rng = rng or random.Random()
        self.requests = 0
        self.retried = 0

    async def __aenter__(self) -> LogFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this fetcher made it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            # Deadlines are enforced per attempt below; httpx's own timeouts are a backstop.
            # HTTP/2 where the log offers it (ALPN), HTTP/1.1 otherwise: many requests
            # to one log share one connection.
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.policy.deadline),
                http2=True,
                follow_redirects=False,
                headers={"User-Agent": "certvigil-ct"},
            )
        return self._client

    async def get(self, path: str) -> bytes:
        """GET ``base_url + path`` (with any query string) and return the decoded body.

        Raises:
            FetchError: An error status, or the retries ran out (naming the last failure).
        """
        body = await self._get(path, missing_ok=False)
        assert body is not None  # only a 404 with missing_ok gives None
        return body

    async def get_optional(self, path: str) -> bytes | None:
        """Like ``get``, but ``None`` when the log answers 404 (Not Found)."""
        return await self._get(path, missing_ok=True)

    async def _get(self, path: str, *, missing_ok: bool) -> bytes | None:
        url = self.base_url + path
        attempt = 0
        started = time.monotonic()
        while True:
            retry_after: float | None = None
            async with self._slots:
                if self._bucket is not None:
                    await self._bucket.acquire()
                self.requests += 1
                try:
                    async with asyncio.timeout(self.policy.deadline):
                        status, body, retry_after = await self._attempt(url)
                except TimeoutError:
                    reason = f"no complete answer within {self.policy.deadline:g} s"
                except httpx.HTTPError as exc:
                    reason = f"request failed: {type(exc).__name__}"
                else:
                    if status == 200:
                        return body
                    if status == 404 and missing_ok:
                        return None
                    reason = f"HTTP status {status}"
                    if status not in _RETRY_STATUS:
                        raise FetchError(url, reason)
            if attempt >= self.policy.retries:
                attempts = f"{attempt + 1} attempt{'s' if attempt else ''}"
                raise FetchError(url, f"{reason}, after {attempts}")
            delay = self._delay(attempt, retry_after)
            if time.monotonic() - started + delay > self.policy.give_up_after:
                raise FetchError(
                    url,
                    f"{reason}; the next attempt would start after the request's "
                    f"{self.policy.give_up_after:g} s",
                )
            await asyncio.sleep(delay)
            attempt += 1
            self.retried += 1

    async def _attempt(self, url: str) -> tuple[int, bytes, float | None]:
        cap = self.policy.max_bytes
        async with self._http().stream("GET", url) as response:
            if response.status_code != 200:
                return response.status_code, b"", _retry_after(response.headers)
            declared = response.headers.get("content-length", "")
            if _is_number(declared) and "content-encoding" not in response.headers:
                if int(declared) > cap:
                    raise FetchError(url, f"the answer is {declared} bytes, more than {cap}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > cap:
                    raise FetchError(url, f"the answer is more than {cap} bytes")
                chunks.append(chunk)
            return 200, b"".join(chunks), None

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        policy = self.policy
        backoff = self._rng.uniform(0, min(policy.backoff_cap, policy.backoff_base * 2**attempt))
        if retry_after is None:
            return backoff
        return min(retry_after, policy.max_retry_after) + backoff / 10


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (delta-seconds or an HTTP date)."""
    value = headers.get("retry-after", "").strip()
    if not value:
        return None
    if _is_number(value):
        return float(int(value[:9]))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _is_number(text: str) -> bool:
    """Whether ``text`` is ASCII decimal digits (``str.isdigit`` accepts ``²`` too)."""
    return text.isascii() and text.isdigit()
