"""Hostile loopback servers: each one attacks the probe in one way a real server could.

Every server is a :class:`~certvigil.demo.servers.LoopbackServer` (an asyncio server on a
loopback port 0, in its own thread), so the probe under test and the attacker do not share
an event loop: a probe that never yields cannot slow its attacker down.

- :class:`SlowlorisServer` sends the start of a TLS answer one byte at a time, slowly.
- :class:`EndlessRecordsServer` answers the ClientHello with well-framed handshake records
  full of HelloRequests, as fast as the socket takes them, forever.
- :class:`EndlessGarbageServer` sends random bytes forever.
- :class:`AlertServer` answers the ClientHello with one TLS alert record.
- :class:`PlainGreetingServer` speaks a plain-text protocol (SMTP, IMAP, HTTP ...).
- :class:`StallingStartTlsServer` accepts and never greets; :class:`LoopingStartTlsServer`
  answers every STARTTLS dialogue step with continuation lines that never end.
- :class:`EndlessHttpServer` answers any request with a body that never ends, fast or
  one byte at a time (for the OCSP, CRL and AIA fetchers).
- :func:`long_chain` and :func:`huge_leaf` build the certificates of oversized chains.

:func:`in_own_process` runs any of them in a child process instead: a server that floods
the socket does so at full speed only when it does not share the test's interpreter lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import struct
from collections.abc import Iterator
from datetime import timedelta
from multiprocessing.connection import Connection
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import LoopbackServer, ServerAddress, read_client_hello
from certvigil.targets.target import StartTLS

# One TLS 1.2 handshake record of the maximum plaintext size, holding 4,096 HelloRequests
# (type 0, length 0): a client in the middle of its handshake must ignore each of them.
HELLO_REQUEST_RECORD = b"\x16\x03\x03\x40\x00" + b"\x00\x00\x00\x00" * 4096


class SlowlorisServer(LoopbackServer):
    """Reads the ClientHello, then dribbles a TLS answer one byte every ``interval_s``.

    The bytes are the start of a handshake record announcing a full-size ServerHello
    that never completes, so every byte is plausible and none decides anything.

    Attributes:
        interval_s: Pause after each byte.
        bytes_sent: Bytes written so far, over all connections.
    """

    def __init__(self, *, host: str = "127.0.0.1", interval_s: float = 0.05) -> None:
        """Configure the pause between bytes."""
        super().__init__(host=host)
        self.interval_s = interval_s
        self.bytes_sent = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Dribble bytes until the client leaves."""
        await read_client_hello(reader)
        answer = b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc\x03\x03" + b"\x5a" * 16_000
        for byte in answer:
            writer.write(bytes([byte]))
            await writer.drain()
            self.bytes_sent += 1
            await asyncio.sleep(self.interval_s)


class EndlessRecordsServer(LoopbackServer):
    """Answers the ClientHello with HelloRequest records, as fast as it can, forever.

    Attributes:
        bytes_sent: Bytes written so far, over all connections.
    """

    def __init__(self, *, host: str = "127.0.0.1", record: bytes = HELLO_REQUEST_RECORD) -> None:
        """Configure the record sent over and over."""
        super().__init__(host=host)
        self.record = record
        self.bytes_sent = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send the record until the client leaves."""
        await read_client_hello(reader)
        burst = self.record * 8
        while True:
            writer.write(burst)
            await writer.drain()
            self.bytes_sent += len(burst)


class EndlessGarbageServer(LoopbackServer):
    """Sends random bytes from the moment a client connects, forever."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send garbage until the client leaves."""
        while True:
            writer.write(os.urandom(65536))
            await writer.drain()


class AlertServer(LoopbackServer):
    """Answers the ClientHello with one alert record, then waits for the client to leave.

    Attributes:
        description: The alert code sent (RFC 8446 §6).
        level: 1 warning, 2 fatal.
    """

    def __init__(self, description: int, *, level: int = 2, host: str = "127.0.0.1") -> None:
        """Configure the alert."""
        super().__init__(host=host)
        self.description = description
        self.level = level

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the ClientHello, send the alert, wait for the client to hang up."""
        await read_client_hello(reader)
        writer.write(b"\x15\x03\x03\x00\x02" + bytes([self.level, self.description]))
        await writer.drain()
        await reader.read(65536)


class PlainGreetingServer(LoopbackServer):
    """A plain-text service: sends ``greeting`` (at once, or after the client's first bytes).

    Attributes:
        greeting: What the server says.
        after_client: Wait for the client to speak first (HTTP, XMPP servers do).
    """

    def __init__(
        self, greeting: bytes, *, after_client: bool = False, host: str = "127.0.0.1"
    ) -> None:
        """Configure what is said and when."""
        super().__init__(host=host)
        self.greeting = greeting
        self.after_client = after_client

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Greet, then read until the client leaves."""
        if self.after_client:
            await reader.read(65536)
        writer.write(self.greeting)
        await writer.drain()
        while await reader.read(65536):
            pass


class StallingStartTlsServer(LoopbackServer):
    """Accepts the connection and never says a word (a STARTTLS service that hangs)."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read and discard until the client gives up."""
        while await reader.read(65536):
            pass


class LoopingStartTlsServer(LoopbackServer):
    """Answers every step of a STARTTLS dialogue with a reply that never ends.

    SMTP and FTP get an endless multi-line reply (``250-``/``220-`` lines), IMAP endless
    untagged ``*`` lines, POP3 and PostgreSQL/LDAP an endless unterminated line, XMPP
    stream features that never close.
    """

    def __init__(self, protocol: StartTLS, *, host: str = "127.0.0.1") -> None:
        """Configure the protocol whose replies never end."""
        super().__init__(host=host)
        self.protocol = protocol

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Send the endless reply right after the opening (or the client's first bytes)."""
        if self.protocol in (StartTLS.SMTP, StartTLS.FTP):
            line = b"220-still greeting you\r\n"
        elif self.protocol is StartTLS.IMAP:
            writer.write(b"* OK ready\r\n")
            await reader.readline()
            line = b"* still thinking about it\r\n"
        elif self.protocol is StartTLS.XMPP:
            await reader.read(65536)
            writer.write(b"<?xml version='1.0'?><stream:stream><stream:features>")
            line = b"<feature/>"
        elif self.protocol is StartTLS.POP3:
            line = b"+OK"
        else:  # LDAP, PostgreSQL: an answer that never completes
            await reader.read(65536)
            writer.write(b"\x30\x84\x7f\xff\xff\xff")
            line = b"\x00"
        burst = line * max(1, 16384 // len(line))
        while True:
            writer.write(burst)
            await writer.drain()


class EndlessHttpServer(LoopbackServer):
    """Answers any HTTP request with ``200`` and a chunked body that never ends.

    Attributes:
        interval_s: Pause between chunks; 0 floods, a positive value dribbles one byte
            per chunk.
    """

    def __init__(self, *, interval_s: float = 0.0, host: str = "127.0.0.1") -> None:
        """Configure flooding or dribbling."""
        super().__init__(host=host)
        self.interval_s = interval_s

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Read the request head, then send chunks until the client leaves."""
        while (await reader.readline()).strip():
            pass
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"1\r\nx\r\n" if self.interval_s else b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        while True:
            writer.write(chunk)
            await writer.drain()
            if self.interval_s:
                await asyncio.sleep(self.interval_s)


def long_chain(pki: ThrowawayPki, leaf: IssuedCert, count: int) -> tuple[bytes, ...]:
    """The leaf, its intermediate, then unrelated self-signed certificates up to ``count``.

    Each stray certificate carries a 200-byte organisation name and unit, so 300 of
    them exceed OpenSSL's 100 KiB default limit.

    Args:
        pki: The test PKI (its leaf key signs the extra certificates: fast).
        leaf: The leaf served first.
        count: Certificates in the chain, in all.

    Returns:
        DER encodings, leaf first.
    """
    key = pki.leaf_key
    extra: list[bytes] = []
    for index in range(count - 2):
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, f"stray certificate {index}"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "o" * 64),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * 64),
            ]
        )
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(index + 1)
            .not_valid_before(pki.now_utc - timedelta(days=1))
            .not_valid_after(pki.now_utc + timedelta(days=30))
            .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        )
        extra.append(certificate.public_bytes(Encoding.DER))
    return (*pki.served_chain_der(leaf), *extra)


def huge_leaf(pki: ThrowawayPki, size: int) -> IssuedCert:
    """A leaf for ``localhost`` and 127.0.0.1 padded to about ``size`` bytes.

    The padding is a non-critical private extension (OID 1.3.6.1.4.1.55555.1), so the
    certificate is otherwise ordinary and trusted under the test PKI.

    Args:
        pki: The issuing PKI.
        size: Roughly the DER size wanted.

    Returns:
        The leaf and its key.
    """
    ordinary = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    certificate = ordinary.certificate
    builder = (
        x509.CertificateBuilder()
        .subject_name(certificate.subject)
        .issuer_name(certificate.issuer)
        .public_key(certificate.public_key())
        .serial_number(certificate.serial_number)
        .not_valid_before(certificate.not_valid_before_utc)
        .not_valid_after(certificate.not_valid_after_utc)
    )
    for extension in certificate.extensions:
        builder = builder.add_extension(extension.value, critical=extension.critical)
    padding = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.55555.1"),
        b"\x04\x83" + struct.pack("!I", size)[1:] + b"\x00" * size,
    )
    builder = builder.add_extension(padding, critical=False)
    issuer_key = pki.intermediate.private_key
    padded = builder.sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    return IssuedCert(certificate=padded, private_key=ordinary.private_key)


@contextlib.contextmanager
def in_own_process(
    server_class: type[LoopbackServer], *args: Any, **kwargs: Any
) -> Iterator[ServerAddress]:
    """Run ``server_class(*args, **kwargs)`` in a child process while the context is open.

    Args:
        server_class: A loopback server class importable by the child.
        *args: Its positional arguments (picklable).
        **kwargs: Its keyword arguments (picklable).

    Yields:
        The server's address.
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_serve_in_child, args=(server_class, args, kwargs, theirs), daemon=True
    )
    process.start()
    try:
        for _ in range(300):  # 30 s at most, and at once if the child died
            if ours.poll(0.1) or not process.is_alive():
                break
        if not ours.poll(0):
            raise RuntimeError(f"{server_class.__name__} did not start in its own process")
        host, port = ours.recv()
        yield ServerAddress(host, port)
    finally:
        ours.close()
        process.kill()
        process.join(10)


def _serve_in_child(
    server_class: type[LoopbackServer],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    pipe: Connection,
) -> None:
    with server_class(*args, **kwargs) as address:
        pipe.send((address.host, address.port))
        with contextlib.suppress(EOFError, OSError):
            pipe.recv()  # returns (EOFError) when the parent closes its end
