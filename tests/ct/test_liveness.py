"""Liveness of a name found in CT, on loopback: a DNS server answering A records and an
HTTPS server, a name that does not resolve, a server that never stops talking."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Iterator

import dns.asyncresolver
import dns.message
import dns.rdatatype
import dns.rrset
import pytest
import trustme

from certvigil.ct.watch.liveness import Liveness, check_liveness
from tests.support.dns_server import LoopbackDns

NAME = "login.examp1e-bank.test"


class AddressDns(LoopbackDns):
    """The loopback DNS server, also answering A queries from ``addresses``."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: dict[str, str] = {}

    def __enter__(self) -> AddressDns:
        super().__enter__()
        return self

    def _reply(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        if question.rdtype == dns.rdatatype.A and name in self.addresses:
            self.queries.append(name)
            response = dns.message.make_response(query)
            response.answer.append(
                dns.rrset.from_text(question.name, 60, "IN", "A", self.addresses[name])
            )
            return response
        return super()._reply(query)


@pytest.fixture
def dns_server() -> Iterator[AddressDns]:
    """The DNS server, NAME at 127.0.0.1."""
    server = AddressDns()
    with server:
        server.addresses[NAME] = "127.0.0.1"
        server.names.add(NAME)
        yield server


def _resolver(server: LoopbackDns) -> dns.asyncresolver.Resolver:
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    return resolver


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serving(handler: Handler, check: Callable[[int], Awaitable[Liveness]]) -> Liveness:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(NAME).configure_cert(context)
    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=context)
    try:
        port = server.sockets[0].getsockname()[1]
        return await check(port)
    finally:
        server.close()
        await server.wait_closed()


def test_a_live_name_gives_its_address_status_and_title(dns_server: AddressDns) -> None:
    """The name resolves, answers 200 over HTTPS, and its title is unescaped and cleaned."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n"
            b"<html><head><TITLE>Examp1e &amp; Bank\n\x1b[31m Login</TITLE></head></html>"
        )
        await writer.drain()
        writer.close()

    result = asyncio.run(
        _serving(
            handler,
            lambda port: check_liveness(NAME, resolver=_resolver(dns_server), port=port),
        )
    )

    assert result.is_live
    assert (result.addresses, result.address, result.https_status) == (
        ("127.0.0.1",),
        "127.0.0.1",
        200,
    )
    assert result.title == "Examp1e & Bank \ufffd[31m Login"
    assert NAME in dns_server.queries


def test_a_name_that_does_not_resolve_is_not_live(dns_server: AddressDns) -> None:
    """NXDOMAIN: no address, no request, said in words."""
    result = asyncio.run(check_liveness("gone.example.test", resolver=_resolver(dns_server)))

    assert not result.is_live and result.addresses == () and result.error == "does not resolve"


def test_a_server_that_never_stops_talking_is_cut_at_the_size_cap(
    dns_server: AddressDns,
) -> None:
    """An endless answer is read up to max_bytes and the status still comes back."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 503 Busy\r\n\r\n")
        try:
            while True:
                writer.write(b"x" * 4096)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass

    result = asyncio.run(
        _serving(
            handler,
            lambda port: check_liveness(
                NAME, resolver=_resolver(dns_server), port=port, max_bytes=20_000
            ),
        )
    )

    assert result.https_status == 503 and result.title is None


def test_a_silent_server_is_cut_at_the_deadline(dns_server: AddressDns) -> None:
    """A server that accepts and never answers costs the deadline, then an error."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    result = asyncio.run(
        _serving(
            handler,
            lambda port: check_liveness(
                NAME, resolver=_resolver(dns_server), port=port, deadline_s=0.5
            ),
        )
    )

    assert not result.is_live and "within 0.5 s" in result.error
