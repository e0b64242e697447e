"""Servers that misbehave on purpose, for tests: silent, plain HTTP, reset, bad certificate."""

from __future__ import annotations

import asyncio
import os
import struct

from certvigil.demo.servers import LoopbackServer, read_client_hello, reset_after_client_hello


class SilentServer(LoopbackServer):
    """Accepts connections and never sends a byte (a black hole behind a firewall rule)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read and discard until the client gives up."""
        while await reader.read(65536):
            pass


class PlainHttpServer(LoopbackServer):
    """A plain-HTTP service: answers anything with ``400 Bad Request``, as web servers do."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the request (or ClientHello), answer 400 and close."""
        await reader.read(65536)
        body = b"<html><body>400 Bad Request</body></html>\n"
        writer.write(
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/html\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()


class ResetServer(LoopbackServer):
    """Reads the ClientHello, then resets the connection (RST via ``SO_LINGER`` 0)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the ClientHello and abort with a TCP reset."""
        await reset_after_client_hello(reader, writer)


# TLS 1.2 suites the malformed-certificate server may pick, if the client offers them.
_TLS12_SUITES = (0xC02F, 0xC02B, 0xC030, 0xC02C, 0x009C, 0x009D, 0x002F, 0x0035)


class MalformedCertificateServer(LoopbackServer):
    """Answers the ClientHello with a valid TLS 1.2 ServerHello and a garbage Certificate.

    The records are well framed, so the client gets as far as parsing the certificate;
    the certificate bytes themselves are not DER.

    Attributes:
        certificate_bytes: What is sent in place of the certificate.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        certificate_bytes: bytes = b"\x30\x82\x01\x00" + b"this is not a certificate " * 9,
    ) -> None:
        """Configure the server and the bytes sent as the certificate."""
        super().__init__(host=host)
        self.certificate_bytes = certificate_bytes

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the ClientHello, send ServerHello + bad Certificate, wait for the alert."""
        hello = await read_client_hello(reader)
        suite = _pick_tls12_suite(hello)
        # ServerHello: version, random, empty session id (an echoed one would read as a
        # resumption), suite, null compression, renegotiation_info (OpenSSL 3 refuses
        # servers without it).
        extensions = b"\xff\x01\x00\x01\x00"
        server_hello = (
            b"\x03\x03"
            + os.urandom(32)
            + b"\x00"
            + struct.pack("!H", suite)
            + b"\x00"
            + struct.pack("!H", len(extensions))
            + extensions
        )
        cert = self.certificate_bytes
        certificate_list = _u24(len(cert)) + cert
        certificate = _u24(len(certificate_list)) + certificate_list
        messages = _handshake_message(2, server_hello) + _handshake_message(11, certificate)
        writer.write(b"\x16\x03\x03" + struct.pack("!H", len(messages)) + messages)
        await writer.drain()
        await reader.read(65536)


def _pick_tls12_suite(client_hello: bytes) -> int:
    # handshake type (1) + length (3) + version (2) + random (32), then the session id.
    position = 4 + 2 + 32
    position += 1 + client_hello[position]
    (suites_length,) = struct.unpack("!H", client_hello[position : position + 2])
    offered = client_hello[position + 2 : position + 2 + suites_length]
    codes = {int.from_bytes(offered[i : i + 2], "big") for i in range(0, len(offered), 2)}
    for suite in _TLS12_SUITES:
        if suite in codes:
            return suite
    raise EOFError("the client offers no TLS 1.2 suite this server knows")


def _u24(value: int) -> bytes:
    return value.to_bytes(3, "big")


def _handshake_message(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _u24(len(body)) + body
