"""Read a TLS 1.2 server's first flight in the clear: ServerHello, Certificate, staple.

Up to TLS 1.2 the server's certificate list travels unencrypted, so it can be read
straight from the records, with a size limit of the reader's choosing. The probe uses
this when OpenSSL refuses a certificate list over its own limit (``max_cert_list``,
100 KiB by default, which the OpenSSL bindings in use cannot raise): see
``certvigil.probe.large_chain``.
"""

from __future__ import annotations

from dataclasses import dataclass

from certvigil.tls.records import (
    AlertReply,
    Incomplete,
    MalformedReply,
    ServerHello,
    parse_server_hello_body,
)

_ALERT = 21
_HANDSHAKE = 22
_SERVER_HELLO = 2
_CERTIFICATE = 11
_CERTIFICATE_STATUS = 22
_EXT_ALPN = 16
_OCSP_STATUS_TYPE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class CertificateFlight:
    """What a TLS 1.2-or-earlier server sent up to its certificate (and staple).

    Attributes:
        hello: The ServerHello.
        chain_der: The certificates, in the server's order.
        ocsp_staple_der: The OCSP response of a CertificateStatus message, if one came
            before the flight's end.
    """

    hello: ServerHello
    chain_der: tuple[bytes, ...]
    ocsp_staple_der: bytes | None = None

    @property
    def alpn(self) -> str | None:
        """The ALPN protocol the server selected, ``None`` when none."""
        body = self.hello.extension(_EXT_ALPN)
        if body is None or len(body) < 3 or body[2] + 3 > len(body):
            return None
        return body[3 : 3 + body[2]].decode("ascii", "replace")


FlightReply = CertificateFlight | AlertReply | MalformedReply | Incomplete


def parse_certificate_flight(data: bytes, *, max_list_bytes: int) -> FlightReply:
    """Parse what a server answered to a TLS 1.2 ClientHello, up to its certificates.

    Args:
        data: Every byte received so far.
        max_list_bytes: Largest certificate list accepted.

    Returns:
        The flight once the Certificate message (and a CertificateStatus right after
        it, if any) is complete; an ``AlertReply`` or ``MalformedReply`` when the server
        answered otherwise; ``Incomplete`` while more bytes are needed. Never raises.
    """
    messages = bytearray()
    position = 0
    while len(data) - position >= 5:
        content_type = data[position]
        length = int.from_bytes(data[position + 3 : position + 5], "big")
        if len(data) - position - 5 < length:
            break
        payload = data[position + 5 : position + 5 + length]
        position += 5 + length
        if content_type == _ALERT and not messages and len(payload) == 2:
            return AlertReply(level=payload[0], description=payload[1])
        if content_type != _HANDSHAKE:
            return MalformedReply(reason=f"record type {content_type} before the certificate")
        messages += payload
    return _parse_messages(bytes(messages), max_list_bytes)


def _parse_messages(messages: bytes, max_list_bytes: int) -> FlightReply:
    hello: ServerHello | None = None
    chain: tuple[bytes, ...] | None = None
    position = 0
    while len(messages) - position >= 4:
        kind = messages[position]
        length = int.from_bytes(messages[position + 1 : position + 4], "big")
        if kind == _CERTIFICATE and length > max_list_bytes + 3:
            return MalformedReply(
                reason=f"a certificate list of {length - 3} bytes, over the "
                f"{max_list_bytes}-byte limit"
            )
        if len(messages) - position - 4 < length:
            return Incomplete()
        body = messages[position + 4 : position + 4 + length]
        position += 4 + length
        if hello is None:
            if kind != _SERVER_HELLO:
                return MalformedReply(reason=f"handshake message {kind} before ServerHello")
            parsed = parse_server_hello_body(body)
            if parsed is None:
                return MalformedReply(reason="truncated ServerHello")
            hello = parsed
        elif chain is None:
            if kind != _CERTIFICATE:
                return MalformedReply(reason=f"handshake message {kind} instead of Certificate")
            certificates = _certificate_list(body)
            if certificates is None:
                return MalformedReply(reason="malformed Certificate message")
            chain = certificates
        else:
            staple = _staple(body) if kind == _CERTIFICATE_STATUS else None
            return CertificateFlight(hello=hello, chain_der=chain, ocsp_staple_der=staple)
    return Incomplete()


def _certificate_list(body: bytes) -> tuple[bytes, ...] | None:
    if len(body) < 3 or int.from_bytes(body[:3], "big") != len(body) - 3:
        return None
    certificates: list[bytes] = []
    position = 3
    while position < len(body):
        if len(body) - position < 3:
            return None
        length = int.from_bytes(body[position : position + 3], "big")
        position += 3
        if len(body) - position < length:
            return None
        certificates.append(body[position : position + length])
        position += length
    return tuple(certificates)


def _staple(body: bytes) -> bytes | None:
    if len(body) < 4 or body[0] != _OCSP_STATUS_TYPE:
        return None
    length = int.from_bytes(body[1:4], "big")
    return body[4 : 4 + length] if length == len(body) - 4 else None
