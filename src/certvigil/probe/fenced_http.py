"""An HTTP client that reaches only what a fence allows, each redirect hop and address checked.

The server fetches AIA issuers, OCSP answers and CRLs on behalf of a scan request from
URLs the scanned server chose (its certificates name them, its responders redirect). So
that it never becomes a proxy towards anything else, every request goes through
:class:`FencedTransport`, which, for each hop of a redirect chain separately:

1. refuses a scheme other than ``http``/``https`` and a host the fence does not allow
   (an address literal outside its blocks, a name no pattern matches);
2. resolves a name once and keeps only the addresses the fence allows (all of them when
   the fence trusts DNS); none left: refused;
3. connects to the first address kept, not to the name, so a second lookup (DNS
   rebinding) cannot lead the connection elsewhere. The ``Host`` header and, for https,
   the TLS server name stay the URL's name.

A refusal raises :class:`FetchNotAllowed` (an ``httpx.TransportError``), whose message is
``not checked: <url> outside the allow-list``; the fetchers turn it into a record of what
was not checked (``FetchFailureKind.NOT_ALLOWED``, an ``IssuerFetch`` error), never a
silent pass. The client ignores proxy settings from the environment: a proxy would
connect on our behalf to addresses this transport never sees.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from certvigil.probe.resolve import DnsFailure, resolve_addresses

__all__ = ["FencedTransport", "FetchNotAllowed", "HostFence", "fenced_client"]

MAX_REDIRECTS = 3
"""Most redirects one fetch follows (each hop is checked)."""


class HostFence(Protocol):
    """What a fenced client may reach (``certvigil.server.allowlist.AllowList``)."""

    def allows_host(self, host: str) -> bool:
        """Whether a URL's host (a name, or an address literal) may be reached at all."""
        ...

    def allowed_addresses(self, host: str, addresses: tuple[str, ...]) -> tuple[str, ...]:
        """Of the addresses ``host`` resolved to, those a connection may go to."""
        ...


class FetchNotAllowed(httpx.TransportError):
    """A request (or one hop of its redirects) the fence refused.

    Attributes:
        url: The URL refused.
    """

    def __init__(self, url: str, reason: str = "", *, request: httpx.Request) -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(f"not checked: {url} outside the allow-list{why}", request=request)
        self.url = url


class FencedTransport(httpx.AsyncBaseTransport):
    """Checks each request against a fence, then sends it to the address checked.

    Args:
        fence: What may be reached.
        inner: The transport that sends the checked request (an
            ``httpx.AsyncHTTPTransport`` unless given).
        dns_timeout_s: Limit on each name lookup.
    """

    def __init__(
        self,
        fence: HostFence,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        dns_timeout_s: float = 5.0,
    ) -> None:
        self._fence = fence
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False)
        self._dns_timeout_s = dns_timeout_s
        self.refused: list[str] = []
        """Every URL refused, in order (for logs and tests)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        shown = str(url)
        host = url.host
        if url.scheme not in ("http", "https") or not host or not self._fence.allows_host(host):
            self.refused.append(shown)
            raise FetchNotAllowed(shown, request=request)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            resolved = await resolve_addresses(host, port, timeout_s=self._dns_timeout_s)
        except DnsFailure as exc:
            raise httpx.ConnectError(exc.detail, request=request) from exc
        allowed = self._fence.allowed_addresses(host, resolved)
        if not allowed:
            self.refused.append(shown)
            raise FetchNotAllowed(
                shown, f"{host} resolves to {', '.join(resolved[:4])}", request=request
            )
        address = allowed[0]
        if address == host:
            return await self._inner.handle_async_request(request)
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        # The headers already carry ``Host: <name>`` (httpx set it from the URL).
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=address),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


def fenced_client(
    fence: HostFence,
    *,
    timeout_s: float,
    dns_timeout_s: float = 5.0,
    inner: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An HTTP client for AIA, OCSP and CRL fetches that reaches only what ``fence`` allows.

    Args:
        fence: What may be reached.
        timeout_s: Limit on each phase of a request (connect, read, pool).
        dns_timeout_s: Limit on each name lookup.
        inner: The transport under the fence (tests; a default one otherwise).

    Returns:
        A client following at most :data:`MAX_REDIRECTS` redirects, each hop checked;
        the caller closes it.
    """
    return httpx.AsyncClient(
        transport=FencedTransport(fence, inner=inner, dns_timeout_s=dns_timeout_s),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        headers={"User-Agent": "certvigil"},
    )
