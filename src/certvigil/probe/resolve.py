"""Resolve a target's host to the IP addresses to connect to, classifying DNS failures."""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from concurrent.futures import ThreadPoolExecutor

from certvigil.errors import ProbeError
from certvigil.observed.handshake import FailureKind
from certvigil.targets.ipaddr import ip_or_none

# getaddrinfo errors that may go away on their own (a resolver that did not answer in
# time, or a temporary failure): worth one retry, unlike "no such name".
_TRANSIENT_GAI_ERRORS = frozenset({socket.EAI_AGAIN, getattr(socket, "EAI_SYSTEM", -11)})


DNS_THREADS = 64
"""Lookups in flight at once per process. ``getaddrinfo`` blocks a thread for the whole
round trip to the resolver; asyncio's default executor has CPU count + 4 threads, which
held a scan of host names to a few dozen names per second at 100 ms per lookup."""


def _dns_executor() -> ThreadPoolExecutor:
    # One per process: a forked scan worker must not use its parent's pool, whose
    # threads do not exist in the child.
    return _pool_of_process(os.getpid())


@functools.lru_cache(maxsize=1)
def _pool_of_process(pid: int) -> ThreadPoolExecutor:
    del pid  # the cache key
    return ThreadPoolExecutor(max_workers=DNS_THREADS, thread_name_prefix="certvigil-dns")


class DnsFailure(ProbeError):
    """A host name that did not resolve.

    Attributes:
        host: The name looked up.
        is_transient: The resolver failed temporarily (SERVFAIL, time-out), so a retry
            may succeed; ``False`` for a name that does not exist or has no address.
    """

    def __init__(self, host: str, detail: str, *, is_transient: bool) -> None:
        super().__init__(FailureKind.DNS_FAILURE, detail)
        self.host = host
        self.is_transient = is_transient


async def resolve_addresses(
    host: str, port: int, *, timeout_s: float = 5.0, family: int = socket.AF_UNSPEC
) -> tuple[str, ...]:
    """The addresses ``host`` resolves to, in the resolver's order, without duplicates.

    An IP literal is returned as it is, without asking the resolver.

    Args:
        host: A DNS name or an IP address literal (IPv6 without brackets).
        port: The TCP port (passed to ``getaddrinfo`` so that it filters for TCP).
        timeout_s: Limit on the lookup.
        family: ``socket.AF_INET`` or ``AF_INET6`` to restrict, ``AF_UNSPEC`` for both.

    Returns:
        At least one address, as text.

    Raises:
        DnsFailure: When the name does not resolve, resolves to nothing usable, or the
            lookup takes longer than ``timeout_s``.
    """
    literal = ip_or_none(host)
    if literal is not None:
        return (str(literal),)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.run_in_executor(
                _dns_executor(),
                functools.partial(
                    socket.getaddrinfo, host, port, family=family, type=socket.SOCK_STREAM
                ),
            ),
            timeout_s,
        )
    except TimeoutError as exc:
        raise DnsFailure(
            host, f"{host}: no DNS answer within {timeout_s:g} s", is_transient=True
        ) from exc
    except socket.gaierror as exc:
        raise DnsFailure(
            host,
            f"{host}: {exc.strerror or exc}",
            is_transient=exc.errno in _TRANSIENT_GAI_ERRORS,
        ) from exc
    except UnicodeError as exc:
        raise DnsFailure(host, f"{host}: not a valid DNS name ({exc})", is_transient=False) from exc
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DnsFailure(host, f"{host}: no address", is_transient=False)
    return tuple(addresses)
