"""Is a name found in CT live? Its addresses, HTTPS status and page title (seed 003's scanhost).

On request only (``certvigil ct findings --live``): a look-alike with a certificate is a
threat once it resolves and serves a page. Everything is bounded: one deadline for the
whole check, the answer read up to ``max_bytes``, the title cut to 200 characters, and
what the server sends is data (control characters replaced). The certificate is not
verified: a phishing site's certificate is what CT just showed, and the question is only
whether it answers. The ASN of an address is not looked up (no offline source).
"""

from __future__ import annotations

import asyncio
import html
import re
import ssl
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver

MAX_BYTES = 64 * 1024
"""The most of an answer read (status line, headers and the start of the page)."""
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title", re.IGNORECASE | re.DOTALL)
_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Liveness:
    """What a name answers.

    Attributes:
        name: The name checked (a wildcard is checked at its base name).
        addresses: Its A and AAAA addresses (empty: it does not resolve).
        address: The address the HTTPS request went to (``None``: none tried).
        https_status: The HTTP status of ``GET /`` over TLS (``None``: no answer).
        title: The page's ``<title>``, unescaped and cut (``None``: none found).
        error: What stopped the check, in words (``""`` when it answered).
    """

    name: str
    addresses: tuple[str, ...]
    address: str | None
    https_status: int | None
    title: str | None
    error: str

    @property
    def is_live(self) -> bool:
        """Whether it answered HTTPS with a status."""
        return self.https_status is not None


async def check_liveness(
    name: str,
    *,
    resolver: dns.asyncresolver.Resolver | None = None,
    port: int = 443,
    deadline_s: float = 10.0,
    max_bytes: int = MAX_BYTES,
) -> Liveness:
    """Resolve ``name``, then ``GET /`` over HTTPS at its first address that answers.

    Args:
        name: A normalised host name (``*.`` is dropped).
        resolver: The DNS resolver (the system's by default).
        port: The HTTPS port.
        deadline_s: The whole check's time, DNS included.
        max_bytes: The most of the answer read.

    Returns:
        What was found; failures are in ``error``, never raised.
    """
    host = name.removeprefix("*.")
    resolver = resolver or dns.asyncresolver.Resolver()
    addresses: list[str] = []
    try:
        async with asyncio.timeout(deadline_s):
            for kind in ("A", "AAAA"):
                try:
                    answer = await resolver.resolve(host + ".", kind, lifetime=deadline_s)
                except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
                    continue
                addresses += [rdata.to_text() for rdata in answer]
            if not addresses:
                return Liveness(
                    name=host,
                    addresses=(),
                    address=None,
                    https_status=None,
                    title=None,
                    error="does not resolve",
                )
            last_error = ""
            for address in addresses[:4]:
                try:
                    status, title = await _get(host, address, port, max_bytes)
                except (OSError, ssl.SSLError, ValueError) as exc:
                    last_error = f"{address}: {_words(type(exc).__name__ + ': ' + str(exc))}"
                    continue
                return Liveness(
                    name=host,
                    addresses=tuple(addresses),
                    address=address,
                    https_status=status,
                    title=title,
                    error="",
                )
            return Liveness(
                name=host,
                addresses=tuple(addresses),
                address=None,
                https_status=None,
                title=None,
                error=last_error,
            )
    except TimeoutError:
        error = f"no answer within {deadline_s:g} s"
    except dns.exception.DNSException as exc:
        error = f"DNS: {_words(type(exc).__name__)}"
    return Liveness(
        name=host,
        addresses=tuple(addresses),
        address=None,
        https_status=None,
        title=None,
        error=error,
    )


async def _get(host: str, address: str, port: int, max_bytes: int) -> tuple[int, str | None]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only "does it answer?" (see the module docstring)
    reader, writer = await asyncio.open_connection(address, port, ssl=context, server_hostname=host)
    try:
        request = (
            f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: certvigil\r\n"
            "Accept: text/html\r\nConnection: close\r\n\r\n"
        )
        writer.write(request.encode("ascii"))
        await writer.drain()
        received = bytearray()
        while len(received) < max_bytes:
            chunk = await reader.read(min(16384, max_bytes - len(received)))
            if not chunk:
                break
            received += chunk
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass
    status = _STATUS.match(bytes(received))
    if status is None:
        raise ValueError("not an HTTP/1.x answer")
    found = _TITLE.search(bytes(received))
    title = None
    if found is not None:
        text = html.unescape(found.group(1).decode("utf-8", "replace"))
        title = _words(" ".join(text.split()))[:200]
    return int(status.group(1)), title


def _words(text: str) -> str:
    return "".join(c if c.isprintable() else "\ufffd" for c in text[:300])
