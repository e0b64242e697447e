"""CAA lookups through dnspython, within a deadline (RFC 8659 tree climbing).

``lookup_caa(name)`` asks for the CAA records of the name, then of each parent, until
a non-empty set answers (``ct.caa.climb``). NXDOMAIN and an empty answer move up a level,
as RFC 8659 says; a server failure or the deadline is an error, because "no policy" and
"could not tell" must not look alike. dnspython's resolver follows CNAMEs itself. The
whole climb shares one deadline, so a silent server costs at most that.
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from certvigil.ct.caa import CaaPolicy, CaaRecord, caa_record, climb
from certvigil.ct.errors import CtError
from certvigil.ct.names import normalize_name


class CaaLookupError(CtError):
    """The CAA records of a name could not be read (server failure, deadline).

    Attributes:
        name: The name asked about.
        reason: What went wrong.
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"CAA of {name}: {reason}")
        self.name = name
        self.reason = reason


async def lookup_caa(
    name: str,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    deadline_s: float = 10.0,
) -> CaaPolicy:
    """The CAA policy that applies to ``name``.

    Args:
        name: A host name; a wildcard is looked up at its base name.
        resolver: The resolver to use (the system's by default).
        deadline_s: Seconds the whole climb may take.

    Raises:
        ValueError: ``name`` is not a host name.
        CaaLookupError: A server failed, refused, or the deadline passed.
    """
    normalised = normalize_name(name)
    if normalised is None:
        raise ValueError(f"{name[:100]!r}: not a host name")
    resolver = resolver or dns.asyncresolver.Resolver()
    try:
        async with asyncio.timeout(deadline_s):
            for candidate in climb(normalised):
                records = await _caa_at(resolver, candidate, deadline_s)
                if records:
                    return CaaPolicy(normalised, candidate, records)
    except TimeoutError:
        raise CaaLookupError(normalised, f"no answer within {deadline_s:g} s") from None
    return CaaPolicy(normalised, None, ())


async def _caa_at(
    resolver: dns.asyncresolver.Resolver, name: str, lifetime: float
) -> tuple[CaaRecord, ...]:
    try:
        answer = await resolver.resolve(name + ".", "CAA", lifetime=lifetime)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return ()
    except dns.resolver.LifetimeTimeout:
        raise CaaLookupError(name, f"no answer within {lifetime:g} s") from None
    except dns.resolver.NoNameservers as exc:
        raise CaaLookupError(name, f"every server failed ({_first_line(exc)})") from None
    except dns.exception.DNSException as exc:
        raise CaaLookupError(name, f"{type(exc).__name__}: {_first_line(exc)}") from None
    return tuple(
        caa_record(rdata.flags, rdata.tag, rdata.value)
        for rdata in answer
        if rdata.rdtype == dns.rdatatype.CAA
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return "".join(c if c.isprintable() else "\ufffd" for c in text[:200])
