"""The ClientHello builder and server-reply parser, on bytes alone (with hypothesis)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from certvigil.tls.cipher_suites import SUITES, TLS13_SUITES, SuiteClass, suite_for
from certvigil.tls.records import (
    MAX_REPLY_RECORDS,
    AlertReply,
    ClientHelloSpec,
    Incomplete,
    MalformedReply,
    ServerFlight,
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


def _record(content_type: int, payload: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", content_type, version, len(payload)) + payload


def _handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack("!B", msg_type) + len(body).to_bytes(3, "big") + body


def _server_hello(
    *, version: int = 0x0303, suite: int = 0xC02F, compression: int = 0,
    extensions: bytes = b"", random: bytes = b"\x11" * 32,
) -> bytes:  # fmt: skip
    body = struct.pack("!H", version) + random + b"\x00" + struct.pack("!HB", suite, compression)
    if extensions:
        body += struct.pack("!H", len(extensions)) + extensions
    return _handshake(2, body)


def _parse_client_hello(record: bytes) -> dict[str, object]:
    """A minimal independent reader of what the builder wrote."""
    assert record[0] == 22
    assert struct.unpack("!H", record[3:5])[0] == len(record) - 5
    hs = record[5:]
    assert hs[0] == 1
    body = hs[4:]
    version = struct.unpack("!H", body[:2])[0]
    pos = 34
    sid_len = body[pos]
    pos += 1 + sid_len
    (suites_len,) = struct.unpack("!H", body[pos : pos + 2])
    suites = [
        struct.unpack("!H", body[pos + 2 + i : pos + 4 + i])[0] for i in range(0, suites_len, 2)
    ]
    pos += 2 + suites_len
    comp = list(body[pos + 1 : pos + 1 + body[pos]])
    pos += 1 + body[pos]
    exts: dict[int, bytes] = {}
    if pos < len(body):
        (ext_len,) = struct.unpack("!H", body[pos : pos + 2])
        end = pos + 2 + ext_len
        assert end == len(body)
        pos += 2
        while pos < end:
            kind, length = struct.unpack("!HH", body[pos : pos + 4])
            exts[kind] = body[pos + 4 : pos + 4 + length]
            pos += 4 + length
    return {"version": version, "suites": suites, "compression": comp, "extensions": exts}


@given(
    protocol=st.sampled_from([p for p in TlsProtocol if p is not TlsProtocol.SSL_2_0]),
    suites=st.lists(st.sampled_from(sorted(SUITES)), min_size=1, max_size=60, unique=True),
    name=st.one_of(
        st.none(), st.from_regex(r"[a-z0-9]{1,20}(\.[a-z0-9]{1,20}){0,3}", fullmatch=True)
    ),
)
def test_client_hello_round_trips(
    protocol: TlsProtocol, suites: list[int], name: str | None
) -> None:
    """Every built ClientHello is well formed and carries exactly what was asked for."""
    record = build_client_hello(
        ClientHelloSpec(protocol=protocol, cipher_suites=tuple(suites), server_name=name)
    )
    hello = _parse_client_hello(record)
    assert hello["suites"] == suites
    assert hello["version"] == min(protocol.wire, 0x0303)
    exts = hello["extensions"]
    assert isinstance(exts, dict)
    if protocol is TlsProtocol.SSL_3_0:
        assert exts == {}
    else:
        assert (0 in exts) is bool(name)
        assert 0xFF01 in exts
    if protocol is TlsProtocol.TLS_1_3:
        assert exts[43] == b"\x02\x03\x04"
        key_share = exts[51]
        assert struct.unpack("!HH", key_share[2:6]) == (29, 32)  # an X25519 key of 32 bytes


def test_builder_refuses_bad_specs() -> None:
    """Impossible hellos are refused with a message naming the rule."""
    with pytest.raises(ValueError, match="at least one cipher suite"):
        build_client_hello(ClientHelloSpec(protocol=TlsProtocol.TLS_1_2, cipher_suites=()))
    with pytest.raises(ValueError, match="32 bytes"):
        build_client_hello(
            ClientHelloSpec(protocol=TlsProtocol.TLS_1_2, cipher_suites=(0x2F,), random=b"x")
        )
    with pytest.raises(ValueError, match="build_sslv2_client_hello"):
        build_client_hello(ClientHelloSpec(protocol=TlsProtocol.SSL_2_0, cipher_suites=(0x2F,)))


def test_sslv2_hello_layout() -> None:
    """The SSLv2 CLIENT-HELLO has a two-byte header, version 2 and 3-byte cipher kinds."""
    record = build_sslv2_client_hello((0x010080, 0x0700C0), challenge=b"c" * 16)
    assert record[0] & 0x80
    assert ((record[0] & 0x7F) << 8 | record[1]) == len(record) - 2
    assert record[2] == 1 and record[3:5] == b"\x00\x02"
    assert record[11:17] == bytes.fromhex("0100800700c0")


def test_server_hello_with_extensions_is_parsed() -> None:
    """Version, suite, compression, renegotiation_info and a TLS 1.3 key share are read."""
    exts = struct.pack("!HH", 0xFF01, 1) + b"\x00" + struct.pack("!HHH", 43, 2, 0x0304)
    exts += struct.pack("!HHH", 51, 4, 29) + b"\x00\x00"
    data = _record(22, _server_hello(suite=0x1301, extensions=exts))
    reply = parse_server_reply(data)
    assert isinstance(reply, ServerFlight)
    assert reply.hello.version == 0x0304 and reply.hello.protocol is TlsProtocol.TLS_1_3
    assert reply.hello.cipher_suite == 0x1301
    assert reply.hello.has_renegotiation_info
    assert reply.hello.selected_group == 29


def test_hello_retry_request_is_recognised() -> None:
    """The RFC 8446 magic random marks a HelloRetryRequest and its selected group."""
    hrr_random = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
    exts = struct.pack("!HHH", 43, 2, 0x0304) + struct.pack("!HHH", 51, 2, 24)
    reply = parse_server_reply(
        _record(22, _server_hello(suite=0x1302, extensions=exts, random=hrr_random))
    )
    assert isinstance(reply, ServerFlight)
    assert reply.hello.is_hello_retry_request
    assert reply.hello.selected_group == 24


def test_key_exchange_is_read_across_records() -> None:
    """The DH prime size is read from a ServerKeyExchange split over two records."""
    prime = b"\xff" * 128  # 1024 bits
    ske = _handshake(12, struct.pack("!H", len(prime)) + prime + b"\x00\x01\x02\x00\x01\x05")
    flight = _server_hello(suite=0x009E) + _handshake(11, b"\x00\x00\x00") + ske
    data = _record(22, flight[:50]) + _record(22, flight[50:])
    assert isinstance(parse_server_reply(data[:60], want_key_exchange=True), Incomplete)
    reply = parse_server_reply(data, want_key_exchange=True)
    assert isinstance(reply, ServerFlight)
    assert reply.key_exchange is not None and reply.key_exchange.dh_prime_bits == 1024


def test_ecdhe_group_is_read() -> None:
    """The named curve of an ECDHE ServerKeyExchange is read."""
    ske = _handshake(12, b"\x03\x00\x17\x41" + b"\x04" * 65)
    reply = parse_server_reply(
        _record(22, _server_hello(suite=0xC02F) + ske), want_key_exchange=True
    )
    assert isinstance(reply, ServerFlight) and reply.key_exchange is not None
    assert reply.key_exchange.ecdh_group == 23


def test_alerts_and_garbage() -> None:
    """An alert is an AlertReply; plain text is MalformedReply that does not look like TLS."""
    alert = parse_server_reply(_record(21, b"\x02\x56"))
    assert isinstance(alert, AlertReply) and alert.name == "inappropriate_fallback"
    garbage = parse_server_reply(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert isinstance(garbage, MalformedReply) and not garbage.looks_like_tls


def test_sslv2_server_hello_is_parsed() -> None:
    """An SSLv2 SERVER-HELLO yields its cipher kinds and certificate."""
    cert = b"C" * 10
    specs = bytes.fromhex("0100800700c0")
    body = (
        b"\x04\x00\x01\x00\x02"
        + struct.pack("!HHH", len(cert), len(specs), 16)
        + cert
        + specs
        + b"i" * 16
    )
    record = struct.pack("!H", 0x8000 | len(body)) + body
    reply = parse_sslv2_reply(record)
    assert isinstance(reply, SslV2ServerHello)
    assert reply.cipher_specs == (0x010080, 0x0700C0)
    assert reply.certificate_der == cert
    assert isinstance(parse_sslv2_reply(record[:5]), Incomplete)


@settings(max_examples=400)
@given(data=st.binary(max_size=600), want_kx=st.booleans())
def test_parser_never_raises_on_random_bytes(data: bytes, want_kx: bool) -> None:
    """Arbitrary bytes give a reply value or Incomplete, never an exception."""
    reply = parse_server_reply(data, want_key_exchange=want_kx)
    assert isinstance(reply, ServerFlight | AlertReply | MalformedReply | Incomplete)
    assert isinstance(
        parse_sslv2_reply(data), SslV2ServerHello | AlertReply | MalformedReply | Incomplete
    )
    assert server_flight_done(data) in (True, False, None)
    assert heartbeat_answered(data) in (True, False, None)


@settings(max_examples=300)
@given(
    cut=st.integers(min_value=0, max_value=200),
    flip=st.tuples(
        st.integers(min_value=0, max_value=199), st.integers(min_value=0, max_value=255)
    ),
)
def test_parser_never_raises_on_mangled_server_flights(cut: int, flip: tuple[int, int]) -> None:
    """A real-looking flight, truncated or with one byte changed, never raises."""
    prime = b"\xab" * 64
    ske = _handshake(12, struct.pack("!H", len(prime)) + prime)
    flight = bytearray(_record(22, _server_hello(suite=0x009E) + ske))
    position, value = flip
    if position < len(flight):
        flight[position] = value
    reply = parse_server_reply(
        bytes(flight[: len(flight) - cut % len(flight)]), want_key_exchange=True
    )
    assert isinstance(reply, ServerFlight | AlertReply | MalformedReply | Incomplete)


def test_suite_registry_classification() -> None:
    """The registry classifies suites as the issue's buckets say."""
    assert suite_for(0x1301).classification is SuiteClass.RECOMMENDED
    assert suite_for(0xC02F).classification is SuiteClass.RECOMMENDED
    assert suite_for(0xC013).obsolete_reasons == ("cbc", "sha1_mac")
    assert "no_forward_secrecy" in suite_for(0x009C).obsolete_reasons
    assert suite_for(0x000A).insecure_reasons == ("3des",)
    assert {"export", "rc4", "md5_mac"} <= set(suite_for(0x0003).insecure_reasons)
    assert suite_for(0x0034).is_anonymous
    assert suite_for(0xFFFE).iana_name == "UNKNOWN_0xFFFE"
    assert set(TLS13_SUITES) == {0x1301, 0x1302, 0x1303, 0x1304, 0x1305}


@given(count=st.integers(min_value=1, max_value=200))
def test_hellos_avoid_the_256_to_511_byte_range(count: int) -> None:
    """No ClientHello handshake message is 256-511 bytes long (RFC 7685 padding)."""
    suites = tuple(sorted(SUITES)[:count])
    record = build_client_hello(ClientHelloSpec(protocol=TlsProtocol.TLS_1_2, cipher_suites=suites))
    length = len(record) - 5
    assert not 256 <= length < 512
    assert _parse_client_hello(record)["suites"] == list(suites)


def test_heartbeat_request_claims_what_it_does_not_carry() -> None:
    """The Heartbleed request is one record of type 24 holding three bytes: request type
    1 and a claimed length of 16 KiB, with no payload."""
    record = build_heartbeat_request(0x0302)
    assert record == b"\x18\x03\x02\x00\x03\x01\x40\x00"


def test_flight_end_and_heartbeat_answer_are_recognised() -> None:
    """ServerHelloDone ends a flight; a heartbeat record after it is an answer; an alert
    is not; partial records decide nothing yet."""
    hello_done = b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00"
    assert server_flight_done(hello_done) is True
    assert server_flight_done(hello_done[:7]) is None
    assert server_flight_done(b"\x15\x03\x03\x00\x02\x02\x28") is False
    assert heartbeat_answered(b"") is None
    assert heartbeat_answered(b"\x18\x03\x02\x00\x03\x02\x40") is None
    assert heartbeat_answered(b"\x18\x03\x02\x00\x03\x02\x40\x00") is True
    assert heartbeat_answered(b"\x15\x03\x02\x00\x02\x02\x0a") is False


def test_heartbeat_extension_is_offered_only_when_asked() -> None:
    """The ClientHello carries extension 15 (peer allowed to send) only with heartbeat."""
    plain = build_client_hello(ClientHelloSpec(protocol=TlsProtocol.TLS_1_2, cipher_suites=(0x2F,)))
    asked = build_client_hello(
        ClientHelloSpec(protocol=TlsProtocol.TLS_1_2, cipher_suites=(0x2F,), heartbeat=True)
    )
    assert b"\x00\x0f\x00\x01\x01" in asked
    assert b"\x00\x0f\x00\x01\x01" not in plain


def test_a_flight_cut_into_endless_tiny_records_is_refused() -> None:
    """A ServerHello followed by a Certificate message dribbled out one byte per record
    is refused once the record count passes MAX_REPLY_RECORDS, instead of being parsed
    again and again as it grows; a real flight of many records still parses."""
    certificate = _handshake(11, b"\x00" * 1_000_000)
    dribble = b"".join(_record(22, certificate[i : i + 1]) for i in range(MAX_REPLY_RECORDS + 10))
    data = _record(22, _server_hello(suite=0x009E)) + dribble
    reply = parse_server_reply(data, want_key_exchange=True)
    assert isinstance(reply, MalformedReply)
    assert f"more than {MAX_REPLY_RECORDS} records" in reply.reason
    assert server_flight_done(dribble) is False
    # 64 full records (a 1 MiB chain) and a ServerHelloDone: decided as usual.
    flight = _server_hello(suite=0x009E) + _handshake(11, b"\x00" * 1_000_000)
    flight += _handshake(14, b"")
    records = b"".join(_record(22, flight[i : i + 16384]) for i in range(0, len(flight), 16384))
    assert isinstance(parse_server_reply(records, want_key_exchange=True), ServerFlight)
    assert server_flight_done(records) is True
