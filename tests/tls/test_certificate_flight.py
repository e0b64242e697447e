"""Reading a TLS 1.2 server's certificates straight from its records."""

from __future__ import annotations

import struct

from hypothesis import example, given, settings
from hypothesis import strategies as st

from certvigil.tls.certificate_flight import CertificateFlight, parse_certificate_flight
from certvigil.tls.records import AlertReply, Incomplete, MalformedReply


def u24(value: int) -> bytes:
    """A 3-byte big-endian length."""
    return value.to_bytes(3, "big")


def message(kind: int, body: bytes) -> bytes:
    """A handshake message."""
    return bytes([kind]) + u24(len(body)) + body


def records(data: bytes, size: int = 16384) -> bytes:
    """``data`` as handshake records of at most ``size`` bytes."""
    return b"".join(
        b"\x16\x03\x03" + struct.pack("!H", len(data[i : i + size])) + data[i : i + size]
        for i in range(0, len(data), size)
    )


ALPN_H2 = b"\x00\x10\x00\x05\x00\x03\x02h2"
SERVER_HELLO = message(
    2, b"\x03\x03" + b"\x11" * 32 + b"\x00" + b"\xc0\x2f" + b"\x00" + b"\x00\x09" + ALPN_H2
)
CERTS = (b"\x30" * 70000, b"\x31" * 50000)
CERTIFICATE = message(
    11, u24(sum(3 + len(c) for c in CERTS)) + b"".join(u24(len(c)) + c for c in CERTS)
)
STATUS = message(22, b"\x01" + u24(5) + b"ocsp!")
DONE = message(14, b"")


def test_large_list_over_many_records_is_read() -> None:
    """A 120 KB list split over records comes back whole, with the staple and ALPN."""
    flight = parse_certificate_flight(
        records(SERVER_HELLO + CERTIFICATE + STATUS + DONE), max_list_bytes=1 << 20
    )
    assert isinstance(flight, CertificateFlight), flight
    assert flight.chain_der == CERTS
    assert flight.ocsp_staple_der == b"ocsp!"
    assert flight.alpn == "h2"
    assert flight.hello.cipher_suite == 0xC02F


def test_flight_is_incomplete_until_the_next_message() -> None:
    """Until a message after the Certificate arrives, more bytes are needed."""
    data = records(SERVER_HELLO + CERTIFICATE)
    assert isinstance(parse_certificate_flight(data, max_list_bytes=1 << 20), Incomplete)
    assert isinstance(parse_certificate_flight(data[:-1], max_list_bytes=1 << 20), Incomplete)


def test_list_over_the_limit_is_refused_from_its_header() -> None:
    """The declared length alone refuses an oversized list, before its bytes arrive."""
    data = records(SERVER_HELLO + CERTIFICATE)[:20000]
    reply = parse_certificate_flight(data, max_list_bytes=100000)
    assert isinstance(reply, MalformedReply) and "over the 100000-byte limit" in reply.reason


def test_alert_instead_of_hello() -> None:
    """An alert in place of the ServerHello is returned as such."""
    reply = parse_certificate_flight(b"\x15\x03\x03\x00\x02\x02\x46", max_list_bytes=1000)
    assert reply == AlertReply(level=2, description=70)


@settings(max_examples=300)
@given(data=st.binary(max_size=500))
@example(data=records(SERVER_HELLO + message(11, u24(10) + u24(20))) + DONE)
def test_never_raises(data: bytes) -> None:
    """Arbitrary bytes give a reply value, never an exception."""
    reply = parse_certificate_flight(data, max_list_bytes=4096)
    assert isinstance(reply, CertificateFlight | AlertReply | MalformedReply | Incomplete)
