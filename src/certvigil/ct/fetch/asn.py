"""Team Cymru's IP-to-ASN service over DNS (dnspython), within a deadline.

Two TXT queries per address: the origin (``<reversed>.origin.asn.cymru.com``) and the
AS's name (``AS<n>.asn.cymru.com``); both share one deadline, so a silent server costs
at most that. No answer (NXDOMAIN, empty) is ``None``: the address is not announced.
"""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from certvigil.ct.asn import (
    AsnDataError,
    AsnInfo,
    cymru_name_query,
    cymru_origin_query,
    parse_cymru_name,
    parse_cymru_origin,
)
from certvigil.ct.errors import CtError


class AsnLookupError(CtError):
    """The AS of an address could not be asked (server failure, deadline, bad answer)."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(f"AS of {address}: {reason}")
        self.address = address
        self.reason = reason


async def lookup_asn(
    address: str,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    deadline_s: float = 5.0,
) -> AsnInfo | None:
    """The AS announcing ``address``, with its name when Team Cymru knows it.

    Raises:
        ValueError: ``address`` is not an IP address.
        AsnLookupError: A server failed, the answer is not Team Cymru's format, or the
            deadline passed.
    """
    query = cymru_origin_query(address)
    resolver = resolver or dns.asyncresolver.Resolver()
    try:
        async with asyncio.timeout(deadline_s):
            texts = await _txt(resolver, query, deadline_s, address)
            if not texts:
                return None
            try:
                info = min((parse_cymru_origin(t) for t in texts), key=lambda i: i.asn)
            except AsnDataError as exc:
                raise AsnLookupError(address, exc.reason) from None
            names = await _txt(resolver, cymru_name_query(info.asn), deadline_s, address)
    except TimeoutError:
        raise AsnLookupError(address, f"no answer within {deadline_s:g} s") from None
    name = next((n for n in map(parse_cymru_name, names) if n), None)
    return AsnInfo(
        asn=info.asn, prefix=info.prefix, country=info.country, name=name, source="cymru"
    )


async def _txt(
    resolver: dns.asyncresolver.Resolver, query: str, lifetime: float, address: str
) -> list[str]:
    try:
        answer = await resolver.resolve(query + ".", "TXT", lifetime=lifetime)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except dns.resolver.LifetimeTimeout:
        raise AsnLookupError(address, f"no answer within {lifetime:g} s") from None
    except dns.exception.DNSException as exc:
        raise AsnLookupError(address, f"DNS: {type(exc).__name__}") from None
    texts: list[str] = []
    for rdata in answer:
        if rdata.rdtype == dns.rdatatype.TXT:
            texts.append(b"".join(rdata.strings).decode("utf-8", "replace")[:1024])
    return texts[:16]
