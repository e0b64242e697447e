"""The polite HTTP client: retries, Retry-After, gzip, deadline, size cap, rate limit."""

from __future__ import annotations

import asyncio
import gzip
import random
import time
from collections.abc import Iterator

import pytest

from certvigil.ct.errors import FetchError
from certvigil.ct.fetch.http import FetchPolicy, LogFetcher
from tests.support.ct_log_server import CtLogServer, Fault

FAST = FetchPolicy(deadline=2.0, retries=3, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def server() -> Iterator[CtLogServer]:
    """A log server with one file, ``/log/checkpoint``."""
    with CtLogServer() as running:
        running.site("log").files["checkpoint"] = b"hello\n"
        running.site("log").files["big"] = b"z" * 100_000
        yield running


def _get(server: CtLogServer, path: str, policy: FetchPolicy = FAST) -> bytes:
    async def run() -> bytes:
        async with LogFetcher(server.url("log"), policy, rng=random.Random(1)) as fetcher:
            return await fetcher.get(path)

    return asyncio.run(run())


def test_429_with_retry_after_is_retried_after_the_time_asked(server: CtLogServer) -> None:
    """A 429 with ``Retry-After: 1`` is retried once a second has passed, then succeeds."""
    server.inject(Fault("checkpoint", 429, 1, retry_after="1"))
    started = time.monotonic()

    assert _get(server, "checkpoint") == b"hello\n"
    assert time.monotonic() - started >= 0.95
    assert server.count("/log/checkpoint") == 2


def test_503s_are_retried_with_back_off_until_the_retries_run_out(server: CtLogServer) -> None:
    """Two 503s are retried through; four (one more than the retries) give a FetchError."""
    server.inject(Fault("checkpoint", 503, 2))
    assert _get(server, "checkpoint") == b"hello\n"

    server.inject(Fault("checkpoint", 503, 4))
    with pytest.raises(FetchError, match="HTTP status 503, after 4 attempts"):
        _get(server, "checkpoint")


def test_a_404_is_not_retried(server: CtLogServer) -> None:
    """A missing file fails at once (or is ``None`` from ``get_optional``)."""

    async def optional() -> bytes | None:
        async with LogFetcher(server.url("log"), FAST) as fetcher:
            return await fetcher.get_optional("nothing")

    with pytest.raises(FetchError, match=r"HTTP status 404$"):
        _get(server, "nothing")
    assert asyncio.run(optional()) is None
    assert server.count("/log/nothing") == 2


def test_gzip_answers_are_decoded(server: CtLogServer) -> None:
    """An answer sent with ``Content-Encoding: gzip`` is returned decoded."""
    server.gzip = True
    server.site("log").files["tile"] = bytes(range(256)) * 32
    assert gzip.compress(bytes(range(256)) * 32) != bytes(range(256)) * 32

    assert _get(server, "tile") == bytes(range(256)) * 32


def test_a_body_that_never_ends_is_cut_at_the_deadline(server: CtLogServer) -> None:
    """A log streaming forever holds a request no longer than its deadline (per attempt)."""
    server.stream_forever.add("forever")
    policy = FetchPolicy(deadline=0.5, retries=1, backoff_base=0.01, max_bytes=1 << 30)
    started = time.monotonic()

    with pytest.raises(FetchError, match=r"no complete answer within 0\.5 s, after 2 attempts"):
        _get(server, "forever", policy)
    assert time.monotonic() - started < 2.5


def test_an_answer_past_the_size_cap_is_refused(server: CtLogServer) -> None:
    """An endless body, and a known-length one, stop at the size cap with a FetchError."""
    server.stream_forever.add("forever")
    policy = FetchPolicy(deadline=10.0, retries=0, max_bytes=50_000)
    started = time.monotonic()

    with pytest.raises(FetchError, match="more than 50000 bytes"):
        _get(server, "forever", policy)
    assert time.monotonic() - started < 5
    with pytest.raises(FetchError, match="100000 bytes, more than 50000"):
        _get(server, "big", policy)


def test_the_rate_limit_spaces_requests(server: CtLogServer) -> None:
    """At 20 requests a second (burst 1), ten requests take at least 0.45 s."""

    async def run() -> float:
        policy = FetchPolicy(qps=20, parallel=4)
        async with LogFetcher(server.url("log"), policy) as fetcher:
            started = time.monotonic()
            await asyncio.gather(*(fetcher.get("checkpoint") for _ in range(10)))
            return time.monotonic() - started

    assert asyncio.run(run()) >= 0.44
    assert server.count("/log/checkpoint") == 10


def test_a_gzip_bomb_stops_at_the_size_cap(server: CtLogServer) -> None:
    """10 MB of zeros gzipped to a few kilobytes: refused at the 1 MB cap on decoded bytes."""
    server.gzip = True
    server.site("log").files["bomb"] = bytes(10_000_000)
    policy = FetchPolicy(retries=0, max_bytes=1_000_000)

    with pytest.raises(FetchError, match="more than 1000000 bytes"):
        _get(server, "bomb", policy)


def test_a_retry_after_that_is_not_a_number_falls_back_to_back_off(server: CtLogServer) -> None:
    """``Retry-After: ²`` (a digit to str.isdigit, not to HTTP) is ignored, not a crash."""
    server.inject(Fault("checkpoint", 503, 1, retry_after="\u00b2"))

    assert _get(server, "checkpoint") == b"hello\n"


def test_a_retry_after_past_the_request_budget_gives_up_at_once(server: CtLogServer) -> None:
    """``Retry-After: 120`` with 2 s for the whole request: a FetchError now, not a wait."""
    server.inject(Fault("checkpoint", 429, 1, retry_after="120"))
    policy = FetchPolicy(give_up_after=2.0, max_retry_after=300.0)
    started = time.monotonic()

    with pytest.raises(FetchError, match="HTTP status 429; the next attempt would start after"):
        _get(server, "checkpoint", policy)
    assert time.monotonic() - started < 1.5
