"""One HTTP exchange with a size cap and an overall time limit, failures classified."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from certvigil.observed.revocation import FetchFailure, FetchFailureKind
from certvigil.probe.fenced_http import FetchNotAllowed


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    """Limits on one exchange.

    Attributes:
        timeout_s: Limit on each phase (connect, write, read between bytes).
        total_timeout_s: Limit on the whole exchange, body included.
        max_bytes: Largest body accepted.
    """

    timeout_s: float
    total_timeout_s: float
    max_bytes: int


async def capped_request(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limits: HttpLimits,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> bytes | FetchFailure:
    """Send one request and read the body, refusing bodies over ``limits.max_bytes``.

    Never raises for network problems: they come back as a ``FetchFailure``.

    Args:
        http: The caller's client (its own transport, proxies, pool).
        method: ``"GET"`` or ``"POST"``.
        url: An ``http://`` or ``https://`` URL.
        limits: Time and size limits.
        content: The request body for POST.
        headers: Extra request headers.

    Returns:
        The body of a 200 answer, or why there is none.
    """
    if not url.lower().startswith(("http://", "https://")):
        scheme = url.split(":", 1)[0] if ":" in url else url
        return FetchFailure(
            kind=FetchFailureKind.UNSUPPORTED_URL,
            detail=f"only http and https URLs are fetched, not {scheme!r}",
        )
    try:
        return await asyncio.wait_for(
            _exchange(http, method, url, limits=limits, content=content, headers=headers),
            limits.total_timeout_s,
        )
    except TimeoutError:
        return FetchFailure(
            kind=FetchFailureKind.TIMEOUT,
            detail=f"no complete answer within {limits.total_timeout_s:g} s",
        )
    except httpx.TimeoutException as exc:
        return FetchFailure(
            kind=FetchFailureKind.TIMEOUT,
            detail=f"{type(exc).__name__} after {limits.timeout_s:g} s",
        )
    except FetchNotAllowed as exc:
        return FetchFailure(kind=FetchFailureKind.NOT_ALLOWED, detail=str(exc))
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:  # InvalidURL: no HTTPError
        return FetchFailure(kind=FetchFailureKind.UNSUPPORTED_URL, detail=str(exc))
    except httpx.HTTPError as exc:
        return FetchFailure(
            kind=FetchFailureKind.UNREACHABLE, detail=f"{type(exc).__name__}: {exc}".rstrip(": ")
        )


async def _exchange(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    limits: HttpLimits,
    content: bytes | None,
    headers: dict[str, str] | None,
) -> bytes | FetchFailure:
    timeout = httpx.Timeout(limits.timeout_s)
    request = http.build_request(method, url, content=content, headers=headers, timeout=timeout)
    response = await http.send(request, stream=True, follow_redirects=True)
    try:
        if response.status_code != 200:
            return FetchFailure(
                kind=FetchFailureKind.HTTP_STATUS,
                detail=f"HTTP {response.status_code} {response.reason_phrase}".rstrip(),
                http_status=response.status_code,
            )
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limits.max_bytes:
            return _too_large(limits.max_bytes, f"Content-Length {declared}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limits.max_bytes:
                return _too_large(limits.max_bytes, f"more than {len(body)} bytes")
        return bytes(body)
    finally:
        await response.aclose()


def _too_large(max_bytes: int, seen: str) -> FetchFailure:
    return FetchFailure(
        kind=FetchFailureKind.TOO_LARGE, detail=f"body over the {max_bytes}-byte cap ({seen})"
    )
