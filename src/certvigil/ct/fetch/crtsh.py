"""crt.sh search: a domain's certificate history, politely, with its row cap stated.

Two queries per domain, ``q=<domain>`` (the name itself) and ``q=%.<domain>`` (every
name below it; ``%`` is crt.sh's SQL LIKE wildcard), merged on crt.sh's id. They go
through the CT watch's polite client (``fetch.http.LogFetcher``): one request a second
at most (crt.sh's operator asks heavy users to slow down; its nginx allows a burst of 5
in 60 requests a minute per address), back-off with jitter on 429 and 5xx honouring
``Retry-After`` (crt.sh answers 502/503/504 under load), a deadline for every attempt
and a size cap on every answer. crt.sh cuts answers at 10,000 rows without saying so:
``CrtshSearch.is_capped`` says when that happened.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from certvigil.ct.crtsh import CrtshAnswer, merge_answers, parse_crtsh_answer
from certvigil.ct.fetch.http import FetchPolicy, LogFetcher
from certvigil.ct.names import normalize_name

CRTSH_URL = "https://crt.sh/"

#: One request a second, one at a time; big wildcard queries take crt.sh tens of
#: seconds, so the deadline is long, and the answer is capped at 64 MiB (10,000 rows
#: with long SAN lists stay well under it).
CRTSH_POLICY = FetchPolicy(
    qps=1.0,
    burst=1,
    parallel=1,
    deadline=90.0,
    max_bytes=64 * 1024 * 1024,
    retries=5,
    backoff_base=2.0,
    backoff_cap=60.0,
    max_retry_after=120.0,
    give_up_after=300.0,
)


@dataclass(frozen=True, slots=True)
class CrtshSearch:
    """The history crt.sh has for a domain.

    Attributes:
        domain: The domain searched (normalised).
        answer: The merged answer (certificates newest first, skipped rows, cap).
        queries: The URLs asked, in order.
    """

    domain: str
    answer: CrtshAnswer
    queries: tuple[str, ...]

    @property
    def is_capped(self) -> bool:
        """Whether a query hit crt.sh's 10,000-row cap (the history is incomplete)."""
        return self.answer.is_capped


def crtsh_queries(domain: str, *, exclude_expired: bool = False) -> tuple[str, ...]:
    """The query strings (after the base URL) for a domain and its subdomains.

    Raises:
        ValueError: ``domain`` is not a host name, or is a wildcard.
    """
    name = normalize_name(domain)
    if name is None or name.startswith("*"):
        raise ValueError("not a domain name (give example.com for it and every subdomain)")
    extra = "&exclude=expired" if exclude_expired else ""
    return tuple(f"?q={quote(q, safe='')}&output=json{extra}" for q in (name, f"%.{name}"))


async def search_crtsh(
    domain: str,
    *,
    base_url: str = CRTSH_URL,
    policy: FetchPolicy = CRTSH_POLICY,
    exclude_expired: bool = False,
    client: httpx.AsyncClient | None = None,
    rng: random.Random | None = None,
) -> CrtshSearch:
    """Ask crt.sh for every certificate of ``domain`` and the names below it.

    Args:
        domain: The domain (``example.com``).
        base_url: crt.sh's address (a local server in tests).
        policy: Rate, deadline, size cap and back-off.
        exclude_expired: Leave out expired certificates (crt.sh's ``exclude=expired``).
        client: An ``httpx.AsyncClient`` to share.
        rng: Randomness for the back-off jitter.

    Raises:
        ValueError: ``domain`` is not a domain name.
        FetchError: crt.sh did not answer in time or with success, after the retries.
        ResponseError: An answer is not a JSON array.
    """
    queries = crtsh_queries(domain, exclude_expired=exclude_expired)
    name = normalize_name(domain) or domain
    answers = []
    async with LogFetcher(base_url, policy, client=client, rng=rng) as fetcher:
        for query in queries:
            body = await fetcher.get(query)
            answers.append(parse_crtsh_answer(body, source=fetcher.base_url + query))
    return CrtshSearch(name, merge_answers(*answers), tuple(fetcher.base_url + q for q in queries))
