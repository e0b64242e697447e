"""Real servers on loopback, each in a background thread: TLS, STARTTLS, faults, HTTP files.

Every server listens on an ephemeral port (port 0) of a loopback address and is a context
manager whose ``__enter__`` returns its :class:`ServerAddress`::

    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        ...  # probe address.host, address.port

The TLS servers send the chain exactly in the order given (leaf first, then whatever
follows, duplicates and strays included), so misordered and incomplete chains can be
served on purpose. Each server counts its connections (``connections_accepted``,
``max_concurrent_connections``) so tests can check how hard a client pushed.

The fault servers stand for the ways real endpoints fail: nothing listening
(:func:`closed_port`), a plain-HTTP service (:class:`PlainHttpServer`), a black hole
(:class:`SilentServer`), a reset in the middle of the handshake (:class:`ResetServer`),
and a garbage certificate in an otherwise well-framed TLS 1.2 answer
(:class:`MalformedCertificateServer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.targets.target import StartTLS

_STARTUP_TIMEOUT_S = 10.0
_IO_TIMEOUT_S = 30.0


class ServerAddress(NamedTuple):
    """Where a lab server listens.

    Attributes:
        host: The loopback address (``"127.0.0.1"`` or ``"::1"``).
        port: The TCP port the kernel gave.
    """

    host: str
    port: int

    @property
    def endpoint(self) -> str:
        """``host:port``, with an IPv6 host in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """An ``http://`` URL for ``path`` on this server."""
        return f"http://{self.endpoint}/{path.lstrip('/')}"


class LoopbackServer:
    """A TCP server on an asyncio loop in its own thread; subclasses define ``handle``.

    Attributes:
        host: The address to listen on (loopback only).
        connections_accepted: Connections accepted so far.
        max_concurrent_connections: The most connections open at the same moment (as the
            server's loop saw them: a client's close and its next connect may be seen
            in either order; see ``max_overlapping``).
        connection_intervals: ``(accepted, closed)`` monotonic times of each finished
            connection.
    """

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        """Configure; nothing listens until the server is entered."""
        self.host = host
        self.connections_accepted = 0
        self.max_concurrent_connections = 0
        self.connection_intervals: list[tuple[float, float]] = []
        self._active = 0
        self._address: ServerAddress | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._stopping: asyncio.Event | None = None

    @property
    def address(self) -> ServerAddress:
        """The listening address (only while the server runs)."""
        if self._address is None:
            raise RuntimeError("the server is not running")
        return self._address

    def __enter__(self) -> ServerAddress:
        self._thread = threading.Thread(
            target=self._run, name=f"{type(self).__name__}-{self.host}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(_STARTUP_TIMEOUT_S):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if self._startup_error is not None:
            raise RuntimeError(
                f"{type(self).__name__} could not start: {self._startup_error}"
            ) from self._startup_error
        return self.address

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and self._stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._stopping.set)
        if thread is not None:
            thread.join(_STARTUP_TIMEOUT_S)
        self._address = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve one connection (subclasses override)."""
        raise NotImplementedError

    def max_overlapping(self, *, tolerance_s: float = 0.02) -> int:
        """The most finished connections that were open together for over ``tolerance_s``.

        Unlike ``max_concurrent_connections``, this ignores the instant in which a
        client's closed connection and its next one are both still on the server's
        books, so it measures the client's own concurrency.
        """
        events = sorted(
            [(start, 1) for start, end in self.connection_intervals if end - start > tolerance_s]
            + [
                (end - tolerance_s, -1)
                for start, end in self.connection_intervals
                if end - start > tolerance_s
            ]
        )
        most = current = 0
        for _when, step in events:
            current += step
            most = max(most, current)
        return most

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        # Clients that hang up mid-handshake are the point of many tests: keep quiet.
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        transports: set[asyncio.Transport] = set()

        def make_protocol() -> asyncio.Protocol:
            reader = asyncio.StreamReader(limit=65536, loop=loop)
            return _TrackedStreamProtocol(reader, self._on_connection, transports)

        try:
            self._server = await loop.create_server(make_protocol, self.host, 0, backlog=1024)
        except OSError as exc:
            self._startup_error = exc
            self._ready.set()
            return
        port = int(self._server.sockets[0].getsockname()[1])
        self._address = ServerAddress(self.host, port)
        self._ready.set()
        await self._stopping.wait()
        # Accept what is already queued while the server is still open: asyncio 3.11
        # leaks the socket of a connection accepted in the same loop turn as close().
        await asyncio.sleep(0.02)
        self._server.close()
        # Let accepted connections get their handler task (a task cancelled before it
        # starts never runs its cleanup), then cancel them all.
        await asyncio.sleep(0.02)
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        # A handler task cancelled before it ever ran cannot close its transport: every
        # transport the server made is closed here, whatever became of its handler.
        for transport in list(transports):
            transport.abort()
        await self._server.wait_closed()
        for _ in range(3):
            await asyncio.sleep(0)

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self.connections_accepted += 1
        self._active += 1
        self.max_concurrent_connections = max(self.max_concurrent_connections, self._active)
        accepted = time.monotonic()
        try:
            await asyncio.wait_for(self.handle(reader, writer), _IO_TIMEOUT_S)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._active -= 1
            self.connection_intervals.append((accepted, time.monotonic()))
            writer.transport.abort()
            if task is not None:
                self._handlers.discard(task)


class _TrackedStreamProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that keeps its transport in a registry while it is open."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        on_connection: Callable[
            [asyncio.StreamReader, asyncio.StreamWriter], Coroutine[Any, Any, None]
        ],
        registry: set[asyncio.Transport],
    ) -> None:
        super().__init__(reader, on_connection)
        self._registry = registry
        self._tracked: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.Transport):
            self._tracked = transport
            self._registry.add(transport)
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._tracked is not None:
            self._registry.discard(self._tracked)
        super().connection_lost(exc)


def _certificate_pem(certificate: bytes) -> bytes:
    if certificate.lstrip().startswith(b"-----BEGIN"):
        return certificate.strip() + b"\n"
    # DER: re-encode through cryptography so that bad bytes fail here, not in OpenSSL.
    return x509.load_der_x509_certificate(certificate).public_bytes(Encoding.PEM)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServedChain:
    """A certificate chain and its key, as a TLS server presents them.

    Attributes:
        chain: Certificates in the order the server sends them (leaf first), each
            DER or PEM.
        key_pem: The leaf's private key, PEM.
    """

    chain: Sequence[bytes]
    key_pem: bytes


def server_context(
    served: ServedChain,
    *,
    alpn_protocols: Sequence[str] = (),
    minimum_version: ssl.TLSVersion | None = None,
    maximum_version: ssl.TLSVersion | None = None,
) -> ssl.SSLContext:
    """A server ``SSLContext`` that sends ``served.chain`` in the given order.

    Args:
        served: Chain and key.
        alpn_protocols: ALPN protocols the server accepts, in its preference order.
        minimum_version: Lowest protocol version accepted (default: OpenSSL's).
        maximum_version: Highest protocol version accepted (default: OpenSSL's).

    Returns:
        The context.
    """
    if not served.chain:
        raise ValueError("a served chain needs at least the leaf certificate")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if minimum_version is not None:
        context.minimum_version = minimum_version
    if maximum_version is not None:
        context.maximum_version = maximum_version
    if alpn_protocols:
        context.set_alpn_protocols(list(alpn_protocols))
    # load_cert_chain reads files only; the first certificate is the leaf and the rest are
    # sent after it in file order.
    with tempfile.TemporaryDirectory(prefix="certvigil-lab-") as directory:
        chain_path = Path(directory) / "chain.pem"
        key_path = Path(directory) / "key.pem"
        chain_path.write_bytes(b"".join(_certificate_pem(cert) for cert in served.chain))
        key_path.touch(mode=0o600)
        key_path.write_bytes(served.key_pem)
        context.load_cert_chain(chain_path, key_path)
    return context


class TlsServer(LoopbackServer):
    """A TLS server that serves a given chain, optionally another one per SNI name.

    Attributes:
        server_names_seen: The SNI names clients sent, in arrival order (``None`` for
            a client that sent none).
    """

    def __init__(
        self,
        *,
        chain: Sequence[bytes],
        key_pem: bytes,
        host: str = "127.0.0.1",
        sni_chains: Mapping[str, ServedChain] | None = None,
        alpn_protocols: Sequence[str] = (),
        minimum_version: ssl.TLSVersion | None = None,
        maximum_version: ssl.TLSVersion | None = None,
        hold_before_handshake_s: float = 0.0,
        reject_unknown_names: bool = False,
        reset_first_connections: int = 0,
    ) -> None:
        """Configure the server.

        Args:
            chain: The default chain, leaf first, each certificate DER or PEM.
            key_pem: The default leaf's key.
            host: Loopback address to listen on.
            sni_chains: Chains served instead when the client asks for that SNI name.
            alpn_protocols: ALPN protocols accepted.
            minimum_version: Lowest TLS version accepted.
            maximum_version: Highest TLS version accepted.
            hold_before_handshake_s: Wait this long after accepting before answering
                the ClientHello (to make connections overlap in concurrency tests).
            reject_unknown_names: Abort with the ``unrecognized_name`` alert when the
                client's SNI is not a key of ``sni_chains`` (as nginx's
                ``ssl_reject_handshake`` does).
            reset_first_connections: Reset this many connections (after reading their
                ClientHello) before serving normally: a flaky endpoint for retry tests.
        """
        super().__init__(host=host)
        versions = {"minimum_version": minimum_version, "maximum_version": maximum_version}
        self.context = server_context(
            ServedChain(chain=chain, key_pem=key_pem), alpn_protocols=alpn_protocols, **versions
        )
        self._sni_contexts = {
            name.lower(): server_context(served, alpn_protocols=alpn_protocols, **versions)
            for name, served in (sni_chains or {}).items()
        }
        self.server_names_seen: list[str | None] = []
        self.context.sni_callback = self._select_by_sni
        self._hold_s = hold_before_handshake_s
        self._reject_unknown_names = reject_unknown_names
        self._resets_left = reset_first_connections

    def _select_by_sni(
        self, tls: ssl.SSLObject, server_name: str | None, _context: ssl.SSLContext
    ) -> int | None:
        self.server_names_seen.append(server_name)
        selected = self._sni_contexts.get((server_name or "").lower())
        if selected is not None:
            tls.context = selected
        elif self._reject_unknown_names:
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        return None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Hold if asked, shake hands, then wait for the client to hang up."""
        if self._resets_left > 0:
            self._resets_left -= 1
            await reset_after_client_hello(reader, writer)
            return
        if self._hold_s:
            await asyncio.sleep(self._hold_s)
        await serve_tls_handshake(reader, writer, self.context)


async def serve_tls_handshake(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
) -> None:
    """Shake hands as the server over memory BIOs, then read until the client leaves.

    ``StreamWriter.start_tls`` would lose a ClientHello that arrived before it was
    called (the plain stream already buffered it); feeding the stream's bytes to an
    ``SSLObject`` loses nothing, whenever the client speaks.

    Args:
        reader: The connection's reader, positioned at the ClientHello.
        writer: The connection's writer.
        context: The server context (its SNI callback, if any, runs as usual).

    Raises:
        ssl.SSLError: When the handshake fails (the alert has been sent to the client).
    """
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    while True:
        try:
            tls.do_handshake()
            done = True
        except ssl.SSLWantReadError:
            done = False
        except ssl.SSLError:
            writer.write(outgoing.read())
            await writer.drain()
            raise
        pending = outgoing.read()
        if pending:
            writer.write(pending)
            await writer.drain()
        if done:
            break
        data = await reader.read(65536)
        if not data:
            return
        incoming.write(data)
    while await reader.read(65536):
        pass


async def read_client_hello(reader: asyncio.StreamReader) -> bytes:
    """One TLS record from the client (its ClientHello), as the record body."""
    header = await reader.readexactly(5)
    (length,) = struct.unpack("!H", header[3:5])
    return await reader.readexactly(length)


async def reset_after_client_hello(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Read the ClientHello, then abort the connection with a TCP reset."""
    await read_client_hello(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[ServerAddress]:
    """A port on which nothing listens (connections are refused), reserved meanwhile.

    The port is bound but never listened on, so the kernel refuses connections with a
    reset and no other program can take it while the context is open.

    Args:
        host: Loopback address.

    Yields:
        The address.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield ServerAddress(host, int(sock.getsockname()[1]))


class HttpFileServer(LoopbackServer):
    """A plain HTTP/1.1 server that serves fixed bodies by path (AIA issuers, CRLs).

    Attributes:
        files: Path (``"/ca.der"``) to ``(body, content type)``.
        requests_seen: Paths requested, in arrival order.
    """

    def __init__(
        self,
        files: Mapping[str, bytes | tuple[bytes, str]],
        *,
        host: str = "127.0.0.1",
    ) -> None:
        """Configure the files; a bare body is served as ``application/octet-stream``."""
        super().__init__(host=host)
        self.files: dict[str, tuple[bytes, str]] = {
            "/" + path.lstrip("/"): (item if isinstance(item, tuple) else (item, _OCTETS))
            for path, item in files.items()
        }
        self.requests_seen: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer one GET (or HEAD) and close."""
        request_line = (await reader.readline()).decode("latin-1").split()
        while (await reader.readline()).strip():
            pass
        if len(request_line) != 3 or request_line[0] not in ("GET", "HEAD"):
            writer.write(_http_response(400, b"bad request\n", "text/plain"))
            await writer.drain()
            return
        path = request_line[1].split("?", 1)[0]
        self.requests_seen.append(path)
        found = self.files.get(path)
        if found is None:
            writer.write(_http_response(404, b"not found\n", "text/plain"))
        else:
            body, content_type = found
            response = _http_response(200, body, content_type)
            writer.write(
                response[: len(response) - len(body)] if request_line[0] == "HEAD" else response
            )
        await writer.drain()


_OCTETS = "application/octet-stream"
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found"}


def _http_response(status: int, body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


class StartTlsServer(LoopbackServer):
    """A server that speaks a STARTTLS protocol's plain-text opening, then TLS.

    Speaks the minimum of each dialogue a client needs to reach the handshake; with
    ``refuse=True`` it declines the upgrade the way a real server of that kind does
    (SMTP without the STARTTLS extension, IMAP ``BAD``, POP3 ``-ERR``, FTP ``502``, LDAP
    ``protocolError``, XMPP features without ``<starttls/>``, PostgreSQL ``N``).
    """

    def __init__(
        self,
        protocol: StartTLS,
        *,
        chain: Sequence[bytes],
        key_pem: bytes,
        host: str = "127.0.0.1",
        refuse: bool = False,
    ) -> None:
        """Configure the protocol, the chain served after the upgrade, and refusal."""
        super().__init__(host=host)
        self.protocol = protocol
        self.refuse = refuse
        self.context = server_context(ServedChain(chain=chain, key_pem=key_pem))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Run the dialogue; on agreement, shake hands and wait for the client to leave."""
        dialogue = {
            StartTLS.SMTP: _serve_smtp,
            StartTLS.IMAP: _serve_imap,
            StartTLS.POP3: _serve_pop3,
            StartTLS.FTP: _serve_ftp,
            StartTLS.LDAP: _serve_ldap,
            StartTLS.XMPP: _serve_xmpp,
            StartTLS.POSTGRES: _serve_postgres,
        }[self.protocol]
        if not await dialogue(reader, writer, self.refuse):
            return
        await serve_tls_handshake(reader, writer, self.context)


async def _say(writer: asyncio.StreamWriter, text: str | bytes) -> None:
    writer.write(text.encode() if isinstance(text, str) else text)
    await writer.drain()


async def _command(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    if not line:
        raise EOFError("the client left")
    return line.decode("utf-8", "replace").strip()


async def _serve_smtp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    await _say(writer, "220 lab.test ESMTP certvigil-lab\r\n")
    while True:
        verb = (await _command(reader)).upper()
        if verb.startswith(("EHLO", "HELO")):
            extensions = "250-PIPELINING\r\n250 8BITMIME\r\n"
            if not refuse:
                extensions = "250-PIPELINING\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
            await _say(writer, "250-lab.test greets you\r\n" + extensions)
        elif verb == "STARTTLS" and not refuse:
            await _say(writer, "220 2.0.0 Ready to start TLS\r\n")
            return True
        elif verb == "QUIT":
            await _say(writer, "221 2.0.0 Bye\r\n")
            return False
        else:
            await _say(writer, "502 5.5.1 Command not implemented\r\n")


async def _serve_imap(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    capabilities = "IMAP4rev1" if refuse else "IMAP4rev1 STARTTLS LOGINDISABLED"
    await _say(writer, f"* OK [CAPABILITY {capabilities}] lab IMAP ready\r\n")
    while True:
        tag, _, verb = (await _command(reader)).partition(" ")
        verb = verb.upper()
        if verb == "CAPABILITY":
            await _say(writer, f"* CAPABILITY {capabilities}\r\n{tag} OK CAPABILITY done\r\n")
        elif verb == "STARTTLS" and not refuse:
            await _say(writer, f"{tag} OK Begin TLS negotiation now\r\n")
            return True
        elif verb == "LOGOUT":
            await _say(writer, f"* BYE\r\n{tag} OK LOGOUT done\r\n")
            return False
        else:
            await _say(writer, f"{tag} BAD command not available\r\n")


async def _serve_pop3(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    await _say(writer, "+OK lab POP3 ready\r\n")
    while True:
        verb = (await _command(reader)).upper()
        if verb == "STLS" and not refuse:
            await _say(writer, "+OK Begin TLS negotiation\r\n")
            return True
        if verb == "QUIT":
            await _say(writer, "+OK bye\r\n")
            return False
        await _say(writer, "-ERR command not available\r\n")


async def _serve_ftp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    await _say(writer, "220-lab FTP\r\n220 ready\r\n")
    while True:
        verb = (await _command(reader)).upper()
        if verb in ("AUTH TLS", "AUTH SSL") and not refuse:
            await _say(writer, "234 AUTH TLS OK.\r\n")
            return True
        if verb == "QUIT":
            await _say(writer, "221 Goodbye.\r\n")
            return False
        await _say(writer, "502 Command not implemented.\r\n")


def _ber(tag: int, contents: bytes) -> bytes:
    size = len(contents)
    if size < 0x80:
        return bytes([tag, size]) + contents
    encoded = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(encoded)]) + encoded + contents


async def _serve_ldap(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    header = await reader.readexactly(2)
    if header[0] != 0x30 or header[1] >= 0x80:
        return False
    message = await reader.readexactly(header[1])
    # messageID is the first element: INTEGER, short form.
    message_id = message[2 : 2 + message[1]]
    oid = b"1.3.6.1.4.1.1466.20037"
    if refuse:
        fields = _ber(0x0A, b"\x02") + _ber(0x04, b"") + _ber(0x04, b"StartTLS not supported")
    else:
        fields = _ber(0x0A, b"\x00") + _ber(0x04, b"") + _ber(0x04, b"") + _ber(0x8A, oid)
    response = _ber(0x30, _ber(0x02, message_id) + _ber(0x78, fields))
    await _say(writer, response)
    return not refuse


async def _serve_xmpp(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    received = b""
    while b"<stream:stream" not in received or not received.rstrip().endswith(b">"):
        chunk = await reader.read(4096)
        if not chunk:
            return False
        received += chunk
    starttls = (
        "" if refuse else "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    )
    await _say(
        writer,
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' id='lab1' from='lab.test' "
        f"version='1.0'><stream:features>{starttls}"
        "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
        "</mechanisms></stream:features>",
    )
    if refuse:
        await reader.read(4096)
        return False
    received = b""
    while b"<starttls" not in received or not received.rstrip().endswith(b">"):
        chunk = await reader.read(4096)
        if not chunk:
            return False
        received += chunk
    await _say(writer, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    return True


async def _serve_postgres(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, refuse: bool
) -> bool:
    request = await reader.readexactly(8)
    if request != struct.pack("!II", 8, 80877103):
        return False
    await _say(writer, b"N" if refuse else b"S")
    return not refuse
