"""Protocol and cipher probing: which versions, suites and groups an endpoint accepts.

Each probe is one TCP connection carrying one hand-built ClientHello (see
``certvigil.tls.records``); the answer is read up to the ServerHello (or the
ServerKeyExchange, when the key-exchange size is wanted) and the connection dropped.
Probes for one endpoint run concurrently, capped by a semaphore, so an assessment
takes about as many round trips as the longest chain of dependent probes: suite
enumeration per version, where each handshake removes the suite the server chose
from the next offer (O(accepted suites) handshakes, not O(known suites)).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

from certvigil.errors import ProbeError
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.observed.tls_config import (
    HttpObservation,
    ProtocolSupport,
    TlsConfigObservation,
)
from certvigil.probe.starttls import PlainChannel, negotiate_starttls, plaintext_service_hint
from certvigil.targets.target import StartTLS, Target
from certvigil.tls.cipher_suites import (
    SCSV_FALLBACK,
    SUITES,
    TLS12_SUITES,
    TLS13_SUITES,
    SuiteClass,
)
from certvigil.tls.records import (
    ALERT_INAPPROPRIATE_FALLBACK,
    COMPRESSION_DEFLATE,
    COMPRESSION_NULL,
    ECDH_GROUPS,
    EXT_HEARTBEAT,
    SECP256R1,
    TLS13_GROUPS,
    X25519,
    AlertReply,
    ClientHelloSpec,
    Incomplete,
    MalformedReply,
    ServerFlight,
    ServerReply,
    SslV2ServerHello,
    TlsProtocol,
    build_client_hello,
    build_heartbeat_request,
    build_sslv2_client_hello,
    heartbeat_answered,
    parse_server_reply,
    parse_sslv2_reply,
    server_flight_done,
)

DEFAULT_CONNECT_TIMEOUT_S = 5.0
DEFAULT_HANDSHAKE_TIMEOUT_S = 10.0
DEFAULT_MAX_CONNECTIONS = 8

ConnectionSlot = Callable[[], AbstractAsyncContextManager[None]]
"""Makes the context entered around each probe connection (a limiter's slot)."""
DEFAULT_HTTP_TIMEOUT_S = 3.0
DEFAULT_STARTTLS_TIMEOUT_S = 10.0
_HTTP_MAX_HEADER_BYTES = 32768
# A reply that has not decided anything after this many bytes never will: the largest
# legitimate first flight (a 1 MiB certificate list and the rest) fits well below it.
MAX_REPLY_BYTES = 2 * 1024 * 1024


TlsConfigResult = TlsConfigObservation | ProbeFailure

# Ports of services that speak something other than HTTP inside implicit TLS (IANA):
# SMTPS/submissions, NNTPS, LDAPS, DNS over TLS, FTPS, telnets, IMAPS, POP3S, SIPS,
# XMPP (legacy), AMQPS, syslog over TLS, MQTT over TLS, Kafka's usual TLS port.
NON_HTTP_TLS_PORTS = frozenset(
    {465, 563, 636, 853, 989, 990, 992, 993, 995, 5061, 5223, 5671, 6514, 8883, 9093}
)
_HTTP_ALPN = frozenset({"http/0.9", "http/1.0", "http/1.1", "h2", "h2c", "h3"})


def http_is_plausible(port: int, alpn: str | None) -> bool:
    """Whether an HTTPS ``GET /`` (for HSTS) is worth sending to this endpoint.

    A TLS service that is not HTTP may never answer a GET, and the HSTS probe would
    then wait out its whole time-out. An HTTP ALPN answer settles it; otherwise a port
    registered for another protocol (``NON_HTTP_TLS_PORTS``) says no. Any other port
    may be HTTP and is asked.

    Args:
        port: The endpoint's port.
        alpn: The ALPN protocol the scan's handshake negotiated, if any.
    """
    if alpn is not None:
        return alpn in _HTTP_ALPN
    return port not in NON_HTTP_TLS_PORTS


@dataclass(frozen=True, slots=True)
class _Closed:
    """The server closed or reset the connection without answering."""

    reason: str


@dataclass(frozen=True, slots=True)
class _NetFailure:
    """The connection itself failed."""

    kind: FailureKind
    detail: str


_Outcome = ServerReply | SslV2ServerHello | _Closed | _NetFailure


def _suite_order(code: int) -> tuple[int, bool, int, int]:
    suite = SUITES[code]
    rank = {SuiteClass.RECOMMENDED: 0, SuiteClass.OBSOLETE: 1, SuiteClass.INSECURE: 2}
    return (rank[suite.classification], not suite.has_forward_secrecy, -suite.strength_bits, code)


# Strongest first, so that a server that follows the client's order is seen choosing
# what a modern client would get.
_TLS12_OFFER: tuple[int, ...] = tuple(sorted(TLS12_SUITES, key=_suite_order))
_TLS13_OFFER: tuple[int, ...] = tuple(sorted(TLS13_SUITES, key=_suite_order))
_PRE13 = (TlsProtocol.SSL_3_0, TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_1, TlsProtocol.TLS_1_2)


@dataclass
class _Session:
    """The mutable state of one endpoint's assessment."""

    address: str
    port: int
    server_name: str | None
    connect_timeout_s: float
    handshake_timeout_s: float
    semaphore: asyncio.Semaphore
    connection_slot: ConnectionSlot | None = None
    starttls: StartTLS | None = None
    starttls_name: str = ""
    starttls_timeout_s: float = DEFAULT_STARTTLS_TIMEOUT_S
    handshake_count: int = 0
    errors: list[str] = field(default_factory=list)
    not_tls_start: bytes = b""

    def slot(self) -> AbstractAsyncContextManager[None]:
        """The caller's slot for one more connection (the scan's per-address limits)."""
        return self.connection_slot() if self.connection_slot is not None else nullcontext()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """A connection ready for a ClientHello: after the STARTTLS dialogue when needed.

        Raises:
            TimeoutError: The connect, or the dialogue, took too long.
            ProbeError: The server refused or garbled the STARTTLS upgrade.
            OSError: The connection failed.
        """
        if self.starttls is None:
            return await asyncio.wait_for(
                asyncio.open_connection(self.address, self.port), self.connect_timeout_s
            )
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            await asyncio.wait_for(
                loop.sock_connect(sock, (self.address, self.port)), self.connect_timeout_s
            )
            channel = PlainChannel(loop, sock)
            await asyncio.wait_for(
                negotiate_starttls(self.starttls, channel, server_name=self.starttls_name),
                self.starttls_timeout_s,
            )
            if channel.leftover:
                raise ProbeError(
                    FailureKind.STARTTLS_FAILURE,
                    "the server sent data after agreeing to upgrade to TLS",
                )
            return await asyncio.open_connection(sock=sock)
        except BaseException:
            sock.close()
            raise

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """One probe connection within the endpoint's and the scan's limits, aborted after.

        Raises:
            TimeoutError, ProbeError, OSError: As ``_connect`` (on entering).
        """
        async with self.semaphore, self.slot():
            self.handshake_count += 1
            reader, writer = await self._connect()
            try:
                yield reader, writer
            finally:
                # An abortive close: nothing more is owed to a half-finished handshake.
                writer.transport.abort()

    async def exchange(
        self, hello: bytes, parse: Callable[[bytes], ServerReply | SslV2ServerHello | Incomplete]
    ) -> _Outcome:
        try:
            async with self.connection() as (reader, writer):
                return await self._reply(reader, writer, hello, parse)
        except TimeoutError:
            return _NetFailure(
                FailureKind.TIMEOUT, f"connect timed out after {self.connect_timeout_s:g} s"
            )
        except ProbeError as exc:
            return _NetFailure(FailureKind(exc.kind), exc.detail)
        except ConnectionRefusedError as exc:
            return _NetFailure(FailureKind.CONNECTION_REFUSED, str(exc))
        except OSError as exc:
            return _NetFailure(FailureKind.UNREACHABLE, str(exc))

    async def _reply(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        hello: bytes,
        parse: Callable[[bytes], ServerReply | SslV2ServerHello | Incomplete],
    ) -> _Outcome:
        """Send ``hello`` and read until ``parse`` decides (never raises)."""
        try:
            writer.write(hello)
            data = b""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.handshake_timeout_s
            while True:
                remaining_s = deadline - loop.time()
                if remaining_s <= 0:
                    raise TimeoutError
                chunk = await asyncio.wait_for(reader.read(65536), remaining_s)
                if not chunk:
                    if data:
                        return MalformedReply(reason="connection closed mid-reply")
                    return _Closed("connection_closed")
                data += chunk
                if len(data) > MAX_REPLY_BYTES:
                    return MalformedReply(
                        reason=f"more than {MAX_REPLY_BYTES} bytes without a decisive answer"
                    )
                reply = parse(data)
                if isinstance(reply, MalformedReply) and not reply.looks_like_tls:
                    self.not_tls_start = self.not_tls_start or data[:512]
                if not isinstance(reply, Incomplete):
                    return reply
        except TimeoutError:
            return _NetFailure(
                FailureKind.TIMEOUT, f"no answer within {self.handshake_timeout_s:g} s"
            )
        except ConnectionResetError:
            return _Closed("connection_reset")
        except OSError as exc:
            return _NetFailure(FailureKind.CONNECTION_RESET, str(exc))

    async def hello(
        self,
        protocol: TlsProtocol,
        suites: Sequence[int],
        *,
        groups: Sequence[int] | None = None,
        key_share_groups: Sequence[int] = (X25519,),
        compression: Sequence[int] = (COMPRESSION_NULL,),
        want_key_exchange: bool = False,
    ) -> _Outcome:
        if groups is None:
            groups = TLS13_GROUPS if protocol is TlsProtocol.TLS_1_3 else ECDH_GROUPS
        spec = ClientHelloSpec(
            protocol=protocol,
            cipher_suites=tuple(suites),
            server_name=self.server_name,
            groups=tuple(groups),
            key_share_groups=tuple(key_share_groups),
            compression_methods=tuple(compression),
        )

        def parse(data: bytes) -> ServerReply | Incomplete:
            return parse_server_reply(data, want_key_exchange=want_key_exchange)

        outcome = await self.exchange(build_client_hello(spec), parse)
        if isinstance(outcome, MalformedReply):
            self.errors.append(f"{protocol}: {outcome.reason}")
        return outcome


def _accepted(outcome: _Outcome, protocol: TlsProtocol) -> ServerFlight | None:
    if isinstance(outcome, ServerFlight) and outcome.hello.version == protocol.wire:
        return outcome
    return None


def _rejection(outcome: _Outcome) -> str:
    if isinstance(outcome, AlertReply):
        return outcome.name
    if isinstance(outcome, _Closed):
        return outcome.reason
    if isinstance(outcome, _NetFailure):
        return f"{outcome.kind}: {outcome.detail}"
    if isinstance(outcome, MalformedReply):
        return f"malformed reply: {outcome.reason}"
    if isinstance(outcome, ServerFlight):
        proto = outcome.hello.protocol
        return f"negotiated {proto or hex(outcome.hello.version)}"
    return "SSLv2 reply"


@dataclass
class _VersionResult:
    support: ProtocolSupport
    first: ServerFlight | None
    outcome: _Outcome


async def _probe_sslv2(session: _Session) -> _VersionResult:
    outcome = await session.exchange(build_sslv2_client_hello(), parse_sslv2_reply)
    if isinstance(outcome, SslV2ServerHello) and outcome.cipher_specs:
        support = ProtocolSupport(
            protocol=TlsProtocol.SSL_2_0, is_accepted=True, cipher_suites=outcome.cipher_specs
        )
    else:
        support = ProtocolSupport(
            protocol=TlsProtocol.SSL_2_0, is_accepted=False, rejection=_rejection(outcome)
        )
    return _VersionResult(support, None, outcome)


async def _probe_version(session: _Session, protocol: TlsProtocol) -> _VersionResult:
    """Whether ``protocol`` is accepted, then every suite it accepts and their order."""
    offer = list(_TLS13_OFFER if protocol is TlsProtocol.TLS_1_3 else _TLS12_OFFER)
    outcome = await session.hello(protocol, offer)
    first = _accepted(outcome, protocol)
    if first is None:
        support = ProtocolSupport(
            protocol=protocol, is_accepted=False, rejection=_rejection(outcome)
        )
        return _VersionResult(support, None, outcome)
    accepted: list[int] = []
    flight: ServerFlight | None = first
    while flight is not None:
        chosen = flight.hello.cipher_suite
        if chosen not in offer:
            session.errors.append(f"{protocol}: server chose suite 0x{chosen:04X}, not offered")
            break
        accepted.append(chosen)
        offer.remove(chosen)
        if not offer:
            break
        flight = _accepted(await session.hello(protocol, offer), protocol)
    enforces: bool | None = None
    if len(accepted) >= 2:
        # Offer the last-found suite before the first-found one: a server that
        # follows its own order still picks the first; one that follows ours does not.
        check = _accepted(await session.hello(protocol, [accepted[-1], accepted[0]]), protocol)
        if check is not None:
            enforces = check.hello.cipher_suite == accepted[0]
    support = ProtocolSupport(
        protocol=protocol,
        is_accepted=True,
        cipher_suites=tuple(accepted),
        server_enforces_order=enforces,
    )
    return _VersionResult(support, first, outcome)


async def _enumerate_tls13_groups(session: _Session) -> tuple[int, ...]:
    remaining = list(TLS13_GROUPS)
    found: list[int] = []
    while remaining:
        shares = [g for g in remaining if g in (X25519, SECP256R1)][:1]
        outcome = await session.hello(
            TlsProtocol.TLS_1_3, _TLS13_OFFER, groups=remaining, key_share_groups=shares
        )
        flight = _accepted(outcome, TlsProtocol.TLS_1_3)
        group = flight.hello.selected_group if flight else None
        if group is None or group not in remaining:
            break
        found.append(group)
        remaining.remove(group)
    return tuple(found)


async def _enumerate_ecdh_groups(
    session: _Session, protocol: TlsProtocol, suites: Sequence[int]
) -> tuple[int, ...]:
    remaining = list(ECDH_GROUPS)
    found: list[int] = []
    while remaining:
        outcome = await session.hello(protocol, suites, groups=remaining, want_key_exchange=True)
        flight = _accepted(outcome, protocol)
        kx = flight.key_exchange if flight else None
        group = kx.ecdh_group if kx else None
        if group is None or group not in remaining:
            break
        found.append(group)
        remaining.remove(group)
    return tuple(found)


async def _dh_prime_bits(
    session: _Session, protocol: TlsProtocol, suites: Sequence[int]
) -> int | None:
    outcome = await session.hello(protocol, suites, groups=(), want_key_exchange=True)
    flight = _accepted(outcome, protocol)
    if flight is None or flight.key_exchange is None:
        return None
    return flight.key_exchange.dh_prime_bits


async def _fallback_scsv(
    session: _Session, protocol: TlsProtocol, suites: Sequence[int]
) -> bool | None:
    outcome = await session.hello(protocol, [*suites, SCSV_FALLBACK])
    if isinstance(outcome, AlertReply):
        return outcome.description == ALERT_INAPPROPRIATE_FALLBACK
    if isinstance(outcome, ServerFlight):
        return False
    return None


async def _compression(session: _Session, protocol: TlsProtocol, suites: Sequence[int]) -> bool:
    outcome = await session.hello(
        protocol, suites, compression=(COMPRESSION_DEFLATE, COMPRESSION_NULL)
    )
    flight = _accepted(outcome, protocol)
    return flight is not None and flight.hello.compression_method == COMPRESSION_DEFLATE


HEARTBLEED_WAIT_S = 2.0
"""How long to wait for a heartbeat response: a vulnerable server answers at once, a
patched one that still runs heartbeats discards the request and says nothing."""


async def _heartbleed(
    session: _Session, protocol: TlsProtocol, suites: Sequence[int]
) -> bool | None:
    """Whether the server answers a heartbeat request that claims more than it carries.

    Offers heartbeats in a ClientHello of ``protocol``; a server that does not echo the
    extension runs no heartbeats (every OpenSSL since 1.1.0 by default) and is not
    vulnerable. One that does gets, after its ServerHelloDone, a heartbeat request of
    three bytes claiming 16 KiB; answering it at all is CVE-2014-0160.

    Returns:
        ``True`` vulnerable, ``False`` not, ``None`` when it could not be told (the
        connection failed or the server's flight never ended).
    """
    spec = ClientHelloSpec(
        protocol=protocol,
        cipher_suites=tuple(suites),
        server_name=session.server_name,
        heartbeat=True,
    )
    try:
        async with session.connection() as (reader, writer):
            return await _heartbeat_exchange(session, reader, writer, build_client_hello(spec))
    except (TimeoutError, ProbeError, OSError):
        return None  # no connection: not told


async def _heartbeat_exchange(
    session: _Session, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: bytes
) -> bool | None:
    try:
        writer.write(hello)
        data = b""
        async with asyncio.timeout(session.handshake_timeout_s):
            while (done := server_flight_done(data)) is None:
                chunk = await reader.read(65536)
                if not chunk or len(data) > MAX_REPLY_BYTES:
                    return None
                data += chunk
        reply = parse_server_reply(data)
        if not done or not isinstance(reply, ServerFlight):
            return None
        if reply.hello.extension(EXT_HEARTBEAT) is None:
            return False
        writer.write(build_heartbeat_request(reply.hello.version))
        after = b""
        try:
            async with asyncio.timeout(min(HEARTBLEED_WAIT_S, session.handshake_timeout_s)):
                while (answered := heartbeat_answered(after)) is None:
                    chunk = await reader.read(65536)
                    if not chunk:
                        return False
                    after += chunk
                    if len(after) > MAX_REPLY_BYTES:
                        return None  # endless records, none of them a heartbeat: not told
        except TimeoutError:
            return False  # discarded, as RFC 6520 requires
        return answered
    except TimeoutError:
        return None
    except OSError:
        return False  # reset on the malformed request: not answered


def _http_context() -> ssl.SSLContext:
    # The configuration is judged elsewhere; here any protocol and suite the local
    # OpenSSL can still speak is fine, and the certificate is not checked.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    try:
        context.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        context.set_ciphers("DEFAULT")
    return context


async def _http(session: _Session, host_header: str, timeout_s: float) -> HttpObservation | None:
    async with session.semaphore, session.slot():
        session.handshake_count += 1
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    session.address,
                    session.port,
                    ssl=_http_context(),
                    server_hostname=session.server_name or "",
                ),
                session.connect_timeout_s + session.handshake_timeout_s,
            )
        except (TimeoutError, OSError):
            return None
        try:
            request = f"GET / HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii", "replace"))
            head = await asyncio.wait_for(_read_http_head(reader), timeout_s)
        except (TimeoutError, OSError):
            return None
        finally:
            writer.transport.abort()
    return parse_http_head(head) if head is not None else None


async def _read_http_head(reader: asyncio.StreamReader) -> bytes | None:
    """The response up to its blank line; ``None`` as soon as it is plainly not HTTP."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(4096)
        if not chunk:
            return None
        head += chunk
        # A mail or database server behind TLS answers with something else: stop at
        # once rather than wait out the time-out.
        if not head.startswith(b"HTTP/"[: len(head)]) or len(head) > _HTTP_MAX_HEADER_BYTES:
            return None
    return head


def parse_http_head(head: bytes) -> HttpObservation | None:
    """The status and HSTS header of an HTTP response head, ``None`` when not HTTP.

    Args:
        head: The response up to and including the blank line.

    Returns:
        The facts, or ``None`` when the first line is not an HTTP status line.
    """
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    hsts: str | None = None
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep and name.strip().lower() == "strict-transport-security" and hsts is None:
            hsts = value.strip()
    return HttpObservation(status_code=int(parts[1]), hsts_header=hsts)


async def _resolve(target: Target, address: str | None) -> str | ProbeFailure:
    if address is not None:
        return address
    if target.is_ip:
        return target.host
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return ProbeFailure(
            target=target,
            kind=FailureKind.DNS_FAILURE,
            detail=str(exc),
            observed_at_utc=datetime.now(UTC),
        )
    return str(infos[0][4][0])


async def observe_tls_config(
    target: Target,
    *,
    address: str | None = None,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    check_http: bool = True,
    http_timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
    connection_slot: ConnectionSlot | None = None,
    starttls_timeout_s: float = DEFAULT_STARTTLS_TIMEOUT_S,
) -> TlsConfigResult:
    """Assess which protocols, suites and groups ``target`` accepts.

    Args:
        target: The endpoint. For a STARTTLS endpoint every probe connection speaks
            the plain-text dialogue (``certvigil.probe.starttls``) before its hello,
            and no HTTP request is sent.
        address: The IP address to connect to; resolved from ``target.host`` when
            ``None``.
        connect_timeout_s: Time-out of each TCP connect.
        handshake_timeout_s: Time-out for the server's answer to each hello.
        max_connections: Connections open at once to this endpoint.
        check_http: Send one HTTPS ``GET /`` to read Strict-Transport-Security.
        http_timeout_s: Limit on waiting for the HTTP response head (a TLS service
            that is not HTTP may never answer a GET).
        connection_slot: Entered around every connection on top of
            ``max_connections``: the scan passes its per-address, per-subnet and global
            limits, so deep probes count against them like the handshake does.
        starttls_timeout_s: Limit on each connection's STARTTLS dialogue.

    Returns:
        The observation, or a ``ProbeFailure`` when the endpoint could not be
        reached or accepted no protocol at all.

    Raises:
        ValueError: ``max_connections`` is below 1.
    """
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, not {max_connections}")
    started = time.perf_counter()
    if target.starttls is not None:
        check_http = False  # a mail, directory or database service: no HTTP inside
    resolved = await _resolve(target, address)
    if isinstance(resolved, ProbeFailure):
        return resolved
    session = _Session(
        address=resolved,
        port=target.port,
        server_name=target.server_name,
        connect_timeout_s=connect_timeout_s,
        handshake_timeout_s=handshake_timeout_s,
        semaphore=asyncio.Semaphore(max_connections),
        connection_slot=connection_slot,
        starttls=target.starttls,
        starttls_name=target.server_name or target.host,
        starttls_timeout_s=starttls_timeout_s,
    )
    host_header = target.server_name or target.host
    if ":" in host_header:
        host_header = f"[{host_header}]"
    http_task = (
        asyncio.create_task(_http(session, host_header, http_timeout_s)) if check_http else None
    )
    tasks = [asyncio.create_task(_probe_sslv2(session))]
    tasks += [asyncio.create_task(_probe_version(session, p)) for p in TlsProtocol if p.wire > 2]
    tls13_groups_task = asyncio.create_task(_enumerate_tls13_groups(session))
    results = await asyncio.gather(*tasks)
    by_protocol = {r.support.protocol: r for r in results}
    if not any(r.support.is_accepted for r in results):
        tls13_groups_task.cancel()
        if http_task is not None:
            http_task.cancel()
        outcomes = [r.outcome for r in results]
        return _no_protocol_failure(target, resolved, outcomes, session.not_tls_start)

    pre13 = [p for p in _PRE13 if by_protocol[p].support.is_accepted]
    best12 = pre13[-1] if pre13 else None
    extra: dict[str, asyncio.Task[object]] = {}
    if best12 is not None:
        suites = by_protocol[best12].support.cipher_suites
        ecdhe = [c for c in suites if SUITES.get(c) and SUITES[c].key_exchange == "ECDHE"]
        dhe = [c for c in suites if SUITES.get(c) and SUITES[c].key_exchange == "DHE"]
        if ecdhe:
            extra["ecdh"] = asyncio.create_task(_enumerate_ecdh_groups(session, best12, ecdhe))
        if dhe:
            extra["dh"] = asyncio.create_task(_dh_prime_bits(session, best12, dhe))
        extra["compression"] = asyncio.create_task(_compression(session, best12, suites))
        extra["heartbleed"] = asyncio.create_task(_heartbleed(session, best12, suites))
    versions = [p for p in (*_PRE13, TlsProtocol.TLS_1_3) if by_protocol[p].support.is_accepted]
    if len(versions) >= 2:
        lower = versions[-2]
        extra["scsv"] = asyncio.create_task(
            _fallback_scsv(session, lower, by_protocol[lower].support.cipher_suites)
        )
    tls13_groups = (
        await tls13_groups_task
        if by_protocol[TlsProtocol.TLS_1_3].support.is_accepted
        else _cancelled(tls13_groups_task)
    )
    done = {name: await task for name, task in extra.items()}
    http = await http_task if http_task is not None else None
    renegotiation: bool | None = None
    if best12 is not None:
        first = by_protocol[best12].first
        renegotiation = first.hello.has_renegotiation_info if first is not None else None
    ecdh = done.get("ecdh", ())
    dh = done.get("dh")
    scsv = done.get("scsv")
    compression = done.get("compression")
    heartbleed = done.get("heartbleed")
    return TlsConfigObservation(
        target=target,
        peer_address=resolved,
        observed_at_utc=datetime.now(UTC),
        protocols=tuple(by_protocol[p].support for p in TlsProtocol),
        tls13_groups=tls13_groups,
        ecdh_groups=ecdh if isinstance(ecdh, tuple) else (),
        dh_prime_bits=dh if isinstance(dh, int) else None,
        fallback_scsv=scsv if isinstance(scsv, bool) else None,
        secure_renegotiation=renegotiation,
        compression=compression if isinstance(compression, bool) else None,
        heartbleed=heartbleed if isinstance(heartbleed, bool) else None,
        http=http,
        handshake_count=session.handshake_count,
        elapsed_s=time.perf_counter() - started,
        probe_errors=tuple(session.errors),
    )


def _cancelled(task: asyncio.Task[tuple[int, ...]]) -> tuple[int, ...]:
    task.cancel()
    return ()


def _no_protocol_failure(
    target: Target, address: str, outcomes: list[_Outcome], not_tls_start: bytes = b""
) -> ProbeFailure:
    now = datetime.now(UTC)
    net = [o for o in outcomes if isinstance(o, _NetFailure)]
    if len(net) == len(outcomes):
        return ProbeFailure(
            target=target, kind=net[0].kind, detail=net[0].detail,
            observed_at_utc=now, peer_address=address,
        )  # fmt: skip
    if any(isinstance(o, MalformedReply) and not o.looks_like_tls for o in outcomes):
        hint = plaintext_service_hint(not_tls_start)
        return ProbeFailure(
            target=target, kind=FailureKind.NOT_TLS, observed_at_utc=now, peer_address=address,
            detail="the server does not answer ClientHellos with TLS records"
            + (f"; {hint}" if hint else ""),
        )  # fmt: skip
    alerts = [o.name for o in outcomes if isinstance(o, AlertReply)]
    return ProbeFailure(
        target=target,
        kind=FailureKind.HANDSHAKE_FAILURE,
        detail="no protocol version from SSLv2 to TLS 1.3 was accepted",
        observed_at_utc=now,
        peer_address=address,
        tls_alert=alerts[0] if alerts else None,
    )
