"""Capture a certificate chain too large for OpenSSL's default limit, over TLS 1.2.

OpenSSL refuses a Certificate message over ``max_cert_list`` (100 KiB by default) with
"excessive message size", and the bindings the probe uses cannot raise that limit. Real
servers do send such chains (hundreds of stray intermediates, certificates stuffed with
names), and a scan should report them rather than fail. Up to TLS 1.2 the certificate
list travels in the clear, so this module sends a hand-built TLS 1.2 ClientHello on a
fresh connection and reads the list straight from the records, with its own bounds:
``max_list_bytes`` for the list, twice that for everything read, and a time-out.
"""

from __future__ import annotations

import asyncio
import socket

from certvigil.probe.sockio import receive, send_all
from certvigil.tls.certificate_flight import CertificateFlight, parse_certificate_flight
from certvigil.tls.cipher_suites import SUITES, TLS12_SUITES, SuiteClass
from certvigil.tls.records import (
    AlertReply,
    ClientHelloSpec,
    Incomplete,
    MalformedReply,
    TlsProtocol,
    build_client_hello,
)

_RECV_BYTES = 65536


def _offer_order(code: int) -> tuple[int, bool, int]:
    suite = SUITES[code]
    rank = {SuiteClass.RECOMMENDED: 0, SuiteClass.OBSOLETE: 1, SuiteClass.INSECURE: 2}
    return (rank[suite.classification], not suite.has_forward_secrecy, code)


# Every TLS 1.2 suite known, the ones a modern client prefers first.
_OFFER = tuple(sorted(TLS12_SUITES, key=_offer_order))


async def capture_chain_in_clear(
    sock: socket.socket,
    *,
    server_name: str | None,
    alpn_protocols: tuple[str, ...],
    timeout_s: float,
    max_list_bytes: int,
) -> CertificateFlight | str:
    """Send a TLS 1.2 ClientHello on ``sock`` and read the server's certificates.

    Args:
        sock: A connected non-blocking socket, ready for a ClientHello.
        server_name: SNI to send (A-labels), ``None`` for none.
        alpn_protocols: ALPN protocols to offer.
        timeout_s: Limit on the whole exchange.
        max_list_bytes: Largest certificate list accepted.

    Returns:
        The flight, or why there is none, in words (never raises for network trouble).
    """
    spec = ClientHelloSpec(
        protocol=TlsProtocol.TLS_1_2,
        cipher_suites=_OFFER,
        server_name=server_name,
        status_request=True,
        alpn=alpn_protocols,
    )
    loop = asyncio.get_running_loop()
    data = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            await send_all(loop, sock, build_client_hello(spec))
            while True:
                chunk = await receive(loop, sock, _RECV_BYTES)
                if not chunk:
                    return "the server closed the connection"
                data += chunk
                if len(data) > 2 * max_list_bytes:
                    return f"more than {2 * max_list_bytes} bytes without a complete certificate"
                reply = parse_certificate_flight(bytes(data), max_list_bytes=max_list_bytes)
                if isinstance(reply, CertificateFlight):
                    return reply
                if isinstance(reply, AlertReply):
                    return f"the server answered with the TLS alert {reply.name}"
                if isinstance(reply, MalformedReply):
                    return reply.reason
                assert isinstance(reply, Incomplete)
    except TimeoutError:
        return f"no certificate within {timeout_s:g} s"
    except OSError as exc:
        return f"the connection failed: {exc.strerror or exc}"
