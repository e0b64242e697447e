"""OCSP, CRL and AIA downloads from servers whose body never ends stop at their limits."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from certvigil.demo.servers import ServerAddress
from certvigil.observed.revocation import FetchFailure, FetchFailureKind
from certvigil.probe.aia import IssuerFetcher
from certvigil.probe.capped_http import HttpLimits, capped_request
from tests.hostile.servers import EndlessHttpServer, in_own_process

LIMITS = HttpLimits(timeout_s=1.0, total_timeout_s=1.0, max_bytes=100_000)


@contextlib.contextmanager
def flooding() -> Iterator[ServerAddress]:
    """A body of 16 KiB chunks at full speed, from its own process."""
    with in_own_process(EndlessHttpServer) as address:
        yield address


@contextlib.contextmanager
def dribbling() -> Iterator[ServerAddress]:
    """A body of one byte every 10 ms."""
    with EndlessHttpServer(interval_s=0.01) as address:
        yield address


SERVERS: dict[str, tuple[Callable[[], contextlib.AbstractContextManager[ServerAddress]], str]] = {
    "flooding": (flooding, FetchFailureKind.TOO_LARGE),
    "dribbling": (dribbling, FetchFailureKind.TIMEOUT),
}


@pytest.mark.parametrize("name", list(SERVERS))
def test_capped_request_stops_at_its_limit(name: str) -> None:
    """The revocation download ends by size or by its total time-out, classified."""
    make, kind = SERVERS[name]

    async def fetch(url: str) -> bytes | FetchFailure:
        async with httpx.AsyncClient() as http:
            return await capped_request(http, "GET", url, limits=LIMITS)

    with make() as at:
        started = time.perf_counter()
        result = asyncio.run(fetch(at.url("/crl")))
        elapsed = time.perf_counter() - started
    assert isinstance(result, FetchFailure), result
    assert result.kind == kind
    assert elapsed < LIMITS.total_timeout_s + 1.0


@pytest.mark.parametrize("name", list(SERVERS))
def test_aia_fetch_stops_at_its_limit(name: str) -> None:
    """The intermediate download ends by size or by its time-out, with an error."""
    make, _kind = SERVERS[name]

    async def fetch(url: str) -> str | None:
        async with IssuerFetcher(timeout_s=0.5, max_bytes=100_000) as fetcher:
            return (await fetcher.fetch(url)).error

    with make() as at:
        started = time.perf_counter()
        error = asyncio.run(fetch(at.url("/ca.der")))
        elapsed = time.perf_counter() - started
    assert error is not None
    assert elapsed < 2 * 0.5 + 1.0
