"""TLS record codec: build ClientHellos of any version and parse the server's first flight.

Pure functions over bytes, no sockets.  The builder writes the hellos that testssl.sh
and sslscan hand-craft (SSLv2, SSLv3, TLS 1.0-1.3 with a chosen suite list and
extensions), so probing does not depend on what the local OpenSSL is willing to send.
The parser never raises on a bad reply: it returns ``MalformedReply`` naming what was
wrong, or ``Incomplete`` when more bytes are needed.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from certvigil.tls.cipher_suites import suite_for


class TlsProtocol(StrEnum):
    """Protocol versions, named as in reports and JSON."""

    SSL_2_0 = "SSLv2"
    SSL_3_0 = "SSLv3"
    TLS_1_0 = "TLSv1.0"
    TLS_1_1 = "TLSv1.1"
    TLS_1_2 = "TLSv1.2"
    TLS_1_3 = "TLSv1.3"

    @property
    def wire(self) -> int:
        """The two-byte version on the wire (``0x0303`` for TLS 1.2)."""
        return _WIRE[self]

    @classmethod
    def from_wire(cls, value: int) -> TlsProtocol | None:
        """The protocol for a wire version, ``None`` when unknown."""
        for proto, wire in _WIRE.items():
            if wire == value:
                return proto
        return None


_WIRE = {
    TlsProtocol.SSL_2_0: 0x0002,
    TlsProtocol.SSL_3_0: 0x0300,
    TlsProtocol.TLS_1_0: 0x0301,
    TlsProtocol.TLS_1_1: 0x0302,
    TlsProtocol.TLS_1_2: 0x0303,
    TlsProtocol.TLS_1_3: 0x0304,
}

ALL_PROTOCOLS: tuple[TlsProtocol, ...] = tuple(TlsProtocol)
"""Every protocol, oldest first."""

# Named groups (IANA TLS Supported Groups registry).
GROUP_NAMES: dict[int, str] = {
    19: "secp192r1",
    21: "secp224r1",
    22: "secp256k1",
    23: "secp256r1",
    24: "secp384r1",
    25: "secp521r1",
    26: "brainpoolP256r1",
    27: "brainpoolP384r1",
    28: "brainpoolP512r1",
    29: "x25519",
    30: "x448",
    31: "brainpoolP256r1tls13",
    32: "brainpoolP384r1tls13",
    33: "brainpoolP512r1tls13",
    256: "ffdhe2048",
    257: "ffdhe3072",
    258: "ffdhe4096",
    259: "ffdhe6144",
    260: "ffdhe8192",
}
GROUP_BITS: dict[int, int] = {
    19: 192, 21: 224, 22: 256, 23: 256, 24: 384, 25: 521, 26: 256, 27: 384, 28: 512,
    29: 253, 30: 448, 31: 256, 32: 384, 33: 512,
    256: 2048, 257: 3072, 258: 4096, 259: 6144, 260: 8192,
}  # fmt: skip
"""Key size of each group: curve order bits for EC groups, prime bits for FFDHE."""
X25519 = 29
SECP256R1 = 23
ECDH_GROUPS: tuple[int, ...] = (29, 23, 30, 24, 25, 26, 27, 28, 22, 21, 19)
"""Elliptic-curve groups offered to TLS 1.2 and below, in preference order."""
TLS13_GROUPS: tuple[int, ...] = (29, 23, 30, 24, 25, 256, 257, 258, 259, 260, 31, 32, 33)
"""Groups valid in TLS 1.3, in preference order."""

SIGNATURE_ALGORITHMS: tuple[int, ...] = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0203, 0x0301, 0x0201, 0x0402, 0x0202,
)  # fmt: skip
"""ECDSA, EdDSA, RSA-PSS, PKCS#1 (SHA-2 then SHA-1), DSA: every server key type is met."""

COMPRESSION_NULL = 0
COMPRESSION_DEFLATE = 1

_EXT_SERVER_NAME = 0
_EXT_STATUS_REQUEST = 5
_EXT_SUPPORTED_GROUPS = 10
_EXT_EC_POINT_FORMATS = 11
_EXT_SIGNATURE_ALGORITHMS = 13
EXT_HEARTBEAT = 15
"""RFC 6520 heartbeat extension: a server that echoes it in its ServerHello runs heartbeats."""
_EXT_ALPN = 16
_EXT_PADDING = 21
_EXT_SUPPORTED_VERSIONS = 43
_EXT_KEY_SHARE = 51
_EXT_RENEGOTIATION_INFO = 0xFF01

_HANDSHAKE = 22
_ALERT = 21
_CHANGE_CIPHER_SPEC = 20
_MAX_RECORD = 16384 + 2048
# A server's first flight takes a few records (a 1 MiB chain cut into full records is 64);
# a reply still undecided after this many is refused, so that a server sending endless
# tiny records cannot make each re-parse of the growing buffer cost more and more.
MAX_REPLY_RECORDS = 4096
_HEARTBEAT = 24

# RFC 8446 §4.1.3: a ServerHello with this random is a HelloRetryRequest.
_HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

ALERT_NAMES: dict[int, str] = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
    21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
    40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
    43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
    46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
    49: "access_denied", 50: "decode_error", 51: "decrypt_error",
    60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension",
    111: "certificate_unobtainable", 112: "unrecognized_name",
    113: "bad_certificate_status_response", 114: "bad_certificate_hash_value",
    115: "unknown_psk_identity", 116: "certificate_required",
    120: "no_application_protocol", 121: "ech_required",
}  # fmt: skip
"""The TLS alert descriptions of the IANA registry, by code, as the RFCs spell them."""
ALERT_INAPPROPRIATE_FALLBACK = 86

SSL2_CIPHER_SPECS: dict[int, str] = {
    0x010080: "SSL_CK_RC4_128_WITH_MD5",
    0x020080: "SSL_CK_RC4_128_EXPORT40_WITH_MD5",
    0x030080: "SSL_CK_RC2_128_CBC_WITH_MD5",
    0x040080: "SSL_CK_RC2_128_CBC_EXPORT40_WITH_MD5",
    0x050080: "SSL_CK_IDEA_128_CBC_WITH_MD5",
    0x060040: "SSL_CK_DES_64_CBC_WITH_MD5",
    0x0700C0: "SSL_CK_DES_192_EDE3_CBC_WITH_MD5",
}
"""SSLv2 cipher kinds (three-byte codes) and their names."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientHelloSpec:
    """What a ClientHello offers.

    Attributes:
        protocol: The highest version offered; TLS 1.3 is offered through
            supported_versions with legacy_version TLS 1.2.
        cipher_suites: Suite codes in preference order (SCSVs may be included).
        server_name: SNI host name, ``None`` to send none.
        groups: supported_groups, ``()`` to omit the extension.
        key_share_groups: TLS 1.3 only: groups to send a public key for (x25519 and
            secp256r1 are supported; others are skipped, the server may then ask
            for one in a HelloRetryRequest).
        signature_algorithms: signature_algorithms (sent for TLS 1.2 and later).
        compression_methods: Offered compression methods, in order.
        renegotiation_info: Send an empty renegotiation_info extension (RFC 5746).
        status_request: Ask for an OCSP staple.
        alpn: ALPN protocol names, ``()`` to omit the extension.
        heartbeat: Offer RFC 6520 heartbeats (peer allowed to send).
        random: The 32-byte client random; fresh random bytes when ``None``.
    """

    protocol: TlsProtocol
    cipher_suites: tuple[int, ...]
    server_name: str | None = None
    groups: tuple[int, ...] = ECDH_GROUPS
    key_share_groups: tuple[int, ...] = (X25519,)
    signature_algorithms: tuple[int, ...] = SIGNATURE_ALGORITHMS
    compression_methods: tuple[int, ...] = (COMPRESSION_NULL,)
    renegotiation_info: bool = True
    status_request: bool = False
    alpn: tuple[str, ...] = ()
    heartbeat: bool = False
    random: bytes | None = None


def _u8(value: int) -> bytes:
    return struct.pack("!B", value)


def _u16(value: int) -> bytes:
    return struct.pack("!H", value)


def _u24(value: int) -> bytes:
    return struct.pack("!I", value)[1:]


def _vec8(data: bytes) -> bytes:
    return _u8(len(data)) + data


def _vec16(data: bytes) -> bytes:
    return _u16(len(data)) + data


def _ext(ext_type: int, body: bytes) -> bytes:
    return _u16(ext_type) + _vec16(body)


@cache
def _public_key(group: int) -> bytes | None:
    """One public key per group and process: probes never finish a handshake."""
    if group == X25519:
        return (
            x25519.X25519PrivateKey.generate()
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
    if group == SECP256R1:
        return (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )
    return None


def _extensions(spec: ClientHelloSpec) -> bytes:
    exts = bytearray()
    if spec.server_name:
        name = spec.server_name.encode("ascii", "replace")
        exts += _ext(_EXT_SERVER_NAME, _vec16(_u8(0) + _vec16(name)))
    if spec.renegotiation_info:
        exts += _ext(_EXT_RENEGOTIATION_INFO, _vec8(b""))
    if spec.groups:
        exts += _ext(_EXT_SUPPORTED_GROUPS, _vec16(b"".join(_u16(g) for g in spec.groups)))
        exts += _ext(_EXT_EC_POINT_FORMATS, _vec8(b"\x00"))
    if spec.protocol in (TlsProtocol.TLS_1_2, TlsProtocol.TLS_1_3):
        sigalgs = b"".join(_u16(a) for a in spec.signature_algorithms)
        exts += _ext(_EXT_SIGNATURE_ALGORITHMS, _vec16(sigalgs))
    if spec.status_request:
        exts += _ext(_EXT_STATUS_REQUEST, b"\x01" + _u16(0) + _u16(0))
    if spec.alpn:
        names = b"".join(_vec8(p.encode("ascii", "replace")) for p in spec.alpn)
        exts += _ext(_EXT_ALPN, _vec16(names))
    if spec.heartbeat:
        exts += _ext(EXT_HEARTBEAT, _u8(1))  # peer_allowed_to_send
    if spec.protocol is TlsProtocol.TLS_1_3:
        exts += _ext(_EXT_SUPPORTED_VERSIONS, _vec8(_u16(0x0304)))
        shares = bytearray()
        for group in spec.key_share_groups:
            key = _public_key(group)
            if key is not None:
                shares += _u16(group) + _vec16(key)
        exts += _ext(_EXT_KEY_SHARE, _vec16(bytes(shares)))
    return bytes(exts)


def build_client_hello(spec: ClientHelloSpec) -> bytes:
    """One TLS record carrying a ClientHello as ``spec`` describes.

    Args:
        spec: The offer.  For ``SSL_2_0`` use :func:`build_sslv2_client_hello`.

    Returns:
        The record bytes, ready to write to the socket.

    Raises:
        ValueError: ``spec`` asks for SSLv2, has no suites, or a random that is not
            32 bytes.
    """
    if spec.protocol is TlsProtocol.SSL_2_0:
        raise ValueError("an SSLv2 hello has its own format: use build_sslv2_client_hello")
    if not spec.cipher_suites:
        raise ValueError("a ClientHello needs at least one cipher suite")
    random = spec.random if spec.random is not None else os.urandom(32)
    if len(random) != 32:
        raise ValueError(f"the client random must be 32 bytes, not {len(random)}")
    legacy_version = min(spec.protocol.wire, 0x0303)
    # TLS 1.3 middlebox compatibility (RFC 8446 D.4) wants a 32-byte session id.
    session_id = os.urandom(32) if spec.protocol is TlsProtocol.TLS_1_3 else b""
    suites = b"".join(_u16(c) for c in spec.cipher_suites)
    body = (
        _u16(legacy_version)
        + random
        + _vec8(session_id)
        + _vec16(suites)
        + _vec8(bytes(spec.compression_methods))
    )
    if spec.protocol is not TlsProtocol.SSL_3_0:
        extensions = _extensions(spec)
        # RFC 7685: some servers (F5 BIG-IP among them) hang on hellos of 256-511
        # bytes; pad those to 512 as browsers and OpenSSL do.
        length = 4 + len(body) + 2 + len(extensions)
        if 256 <= length < 512:
            extensions += _ext(_EXT_PADDING, bytes(max(0, 512 - length - 4)))
        body += _vec16(extensions)
    handshake = _u8(1) + _u24(len(body)) + body
    # Record version TLS 1.0 (SSLv3 for an SSLv3 hello): what old servers accept best.
    record_version = 0x0300 if spec.protocol is TlsProtocol.SSL_3_0 else 0x0301
    return _u8(_HANDSHAKE) + _u16(record_version) + _vec16(handshake)


def build_sslv2_client_hello(
    cipher_specs: tuple[int, ...] = tuple(SSL2_CIPHER_SPECS),
    *,
    version: int = 0x0002,
    challenge: bytes | None = None,
) -> bytes:
    """An SSLv2-format CLIENT-HELLO record.

    Args:
        cipher_specs: Three-byte cipher kinds; TLS suites are written as
            ``0x00XXXX`` (the SSLv2-compatible hello of RFC 5246 E.2).
        version: ``0x0002`` for SSLv2 itself, or a TLS version for the compatible form.
        challenge: 16 to 32 challenge bytes; random when ``None``.

    Returns:
        The record bytes.

    Raises:
        ValueError: No cipher specs, or a challenge of the wrong length.
    """
    if not cipher_specs:
        raise ValueError("an SSLv2 hello needs at least one cipher spec")
    challenge = challenge if challenge is not None else os.urandom(16)
    if not 16 <= len(challenge) <= 32:
        raise ValueError(f"the SSLv2 challenge must be 16-32 bytes, not {len(challenge)}")
    specs = b"".join(struct.pack("!I", c)[1:] for c in cipher_specs)
    body = (
        _u8(1) + _u16(version) + _u16(len(specs)) + _u16(0) + _u16(len(challenge))
        + specs + challenge
    )  # fmt: skip
    return _u16(0x8000 | len(body)) + body


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerHello:
    """A parsed ServerHello (or HelloRetryRequest).

    Attributes:
        legacy_version: The version field of the message.
        cipher_suite: The suite the server chose.
        compression_method: The compression method it chose (0 = none).
        extensions: Extension (type, body) pairs in the server's order.
        is_hello_retry_request: The random marks a TLS 1.3 HelloRetryRequest.
    """

    legacy_version: int
    cipher_suite: int
    compression_method: int
    extensions: tuple[tuple[int, bytes], ...] = ()
    is_hello_retry_request: bool = False

    def extension(self, ext_type: int) -> bytes | None:
        """The body of extension ``ext_type``, ``None`` when absent."""
        for kind, body in self.extensions:
            if kind == ext_type:
                return body
        return None

    @property
    def version(self) -> int:
        """The negotiated version: supported_versions when present, else the field."""
        body = self.extension(_EXT_SUPPORTED_VERSIONS)
        if body is not None and len(body) == 2:
            return int(struct.unpack("!H", body)[0])
        return self.legacy_version

    @property
    def protocol(self) -> TlsProtocol | None:
        """The negotiated protocol, ``None`` for a version this codec does not know."""
        return TlsProtocol.from_wire(self.version)

    @property
    def selected_group(self) -> int | None:
        """The TLS 1.3 key_share group (ServerHello) or selected_group (HRR)."""
        body = self.extension(_EXT_KEY_SHARE)
        if body is None or len(body) < 2:
            return None
        return int(struct.unpack("!H", body[:2])[0])

    @property
    def has_renegotiation_info(self) -> bool:
        """The server answered with renegotiation_info (RFC 5746 secure renegotiation)."""
        return self.extension(_EXT_RENEGOTIATION_INFO) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyExchangeParams:
    """What a TLS 1.2-and-earlier ServerKeyExchange says about the key exchange.

    Attributes:
        dh_prime_bits: Size of the finite-field DH prime, ``None`` for ECDHE.
        ecdh_group: Named group of an ECDHE exchange, ``None`` for DHE.
    """

    dh_prime_bits: int | None = None
    ecdh_group: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerFlight:
    """A server that accepted the hello: its ServerHello and, if asked, its key exchange.

    Attributes:
        hello: The ServerHello or HelloRetryRequest.
        key_exchange: ServerKeyExchange facts; ``None`` when not requested, not sent
            (RSA key exchange), or TLS 1.3.
    """

    hello: ServerHello
    key_exchange: KeyExchangeParams | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertReply:
    """The server answered with a TLS alert.

    Attributes:
        level: 1 warning, 2 fatal.
        description: The alert code.
    """

    level: int
    description: int

    @property
    def name(self) -> str:
        """The alert's RFC name, or ``alert_<code>`` when unknown."""
        return ALERT_NAMES.get(self.description, f"alert_{self.description}")

    @property
    def is_fatal(self) -> bool:
        """Whether the server marked the alert fatal."""
        return self.level == 2


@dataclass(frozen=True, slots=True, kw_only=True)
class SslV2ServerHello:
    """An SSLv2 SERVER-HELLO.

    Attributes:
        version: The server's version field (2 for SSLv2).
        cipher_specs: The cipher kinds the server accepts.
        certificate_der: The server certificate, empty when none was sent.
    """

    version: int
    cipher_specs: tuple[int, ...]
    certificate_der: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedReply:
    """Bytes that are not a well-formed server reply.

    Attributes:
        reason: What was wrong, for the probe's failure detail.
        looks_like_tls: The reply began like a TLS record (a server that spoke TLS
            badly) rather than some other protocol.
    """

    reason: str
    looks_like_tls: bool = True


@dataclass(frozen=True, slots=True)
class Incomplete:
    """More bytes are needed to decide."""


ServerReply = ServerFlight | AlertReply | SslV2ServerHello | MalformedReply
"""Every outcome of parsing a complete reply."""


class _Truncated(Exception):
    """A read went past the end of a length-delimited structure."""


class _Reader:
    """Bounds-checked reads over a bytes object."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, count: int) -> bytes:
        if count < 0 or self._pos + count > len(self._data):
            raise _Truncated
        chunk = self._data[self._pos : self._pos + count]
        self._pos += count
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def u24(self) -> int:
        return int.from_bytes(self.take(3), "big")


def _parse_server_hello(body: bytes) -> ServerHello:
    reader = _Reader(body)
    legacy_version = reader.u16()
    random = reader.take(32)
    reader.take(reader.u8())  # session id
    cipher_suite = reader.u16()
    compression = reader.u8()
    extensions: list[tuple[int, bytes]] = []
    if reader.remaining:
        ext_reader = _Reader(reader.take(reader.u16()))
        while ext_reader.remaining:
            ext_type = ext_reader.u16()
            extensions.append((ext_type, ext_reader.take(ext_reader.u16())))
    return ServerHello(
        legacy_version=legacy_version,
        cipher_suite=cipher_suite,
        compression_method=compression,
        extensions=tuple(extensions),
        is_hello_retry_request=random == _HRR_RANDOM,
    )


def parse_server_hello_body(body: bytes) -> ServerHello | None:
    """The ServerHello in a handshake message body, ``None`` when it is truncated.

    Args:
        body: The message body (after the 4-byte handshake header).
    """
    try:
        return _parse_server_hello(body)
    except _Truncated:
        return None


def _parse_key_exchange(body: bytes, cipher_suite: int) -> KeyExchangeParams | None:
    kx = suite_for(cipher_suite).key_exchange
    reader = _Reader(body)
    if kx == "DHE" or (kx == "DH" and suite_for(cipher_suite).is_anonymous):
        prime = reader.take(reader.u16()).lstrip(b"\x00")
        bits = (len(prime) - 1) * 8 + prime[0].bit_length() if prime else 0
        return KeyExchangeParams(dh_prime_bits=bits)
    if kx == "ECDHE" or (kx == "ECDH" and suite_for(cipher_suite).is_anonymous):
        curve_type = reader.u8()
        if curve_type != 3:  # 3 = named_curve; explicit curves are long dead
            return KeyExchangeParams(ecdh_group=None)
        return KeyExchangeParams(ecdh_group=reader.u16())
    return None


def parse_server_reply(data: bytes, *, want_key_exchange: bool = False) -> ServerReply | Incomplete:
    """Parse what a server sent back after a (TLS-format) ClientHello.

    Args:
        data: Every byte received so far.
        want_key_exchange: Read on to ServerKeyExchange (TLS 1.2 and below) for the
            DH prime size or ECDHE group; otherwise stop at the ServerHello.

    Returns:
        A ``ServerFlight``, an ``AlertReply``, a ``MalformedReply``, or ``Incomplete``
        when the answer is not yet decided by ``data``.  Never raises.
    """
    if not data:
        return Incomplete()
    if data[0] not in (_HANDSHAKE, _ALERT, _CHANGE_CIPHER_SPEC, 23):
        if data[0] & 0x80 and len(data) >= 3 and data[2] == 4:
            return MalformedReply(reason="SSLv2 SERVER-HELLO in answer to a TLS hello")
        return MalformedReply(reason=f"not a TLS record (first byte 0x{data[0]:02x})",
                              looks_like_tls=False)  # fmt: skip
    handshake = bytearray()
    pos = 0
    hello: ServerHello | None = None
    msg_pos = 0
    records = 0
    while True:
        if len(data) - pos < 5:
            return Incomplete()
        records += 1
        if records > MAX_REPLY_RECORDS:
            return MalformedReply(
                reason=f"more than {MAX_REPLY_RECORDS} records without a decisive answer"
            )
        content_type = data[pos]
        version = int.from_bytes(data[pos + 1 : pos + 3], "big")
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if content_type not in (_HANDSHAKE, _ALERT, _CHANGE_CIPHER_SPEC, 23):
            return MalformedReply(reason=f"unknown TLS record type {content_type}")
        if version >> 8 != 3 and hello is None:
            return MalformedReply(reason=f"record version 0x{version:04x} is not SSLv3/TLS",
                                  looks_like_tls=False)  # fmt: skip
        if length > _MAX_RECORD:
            return MalformedReply(reason=f"record of {length} bytes exceeds the TLS limit")
        if len(data) - pos - 5 < length:
            return Incomplete()
        payload = data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if content_type == _ALERT:
            if hello is not None:
                return ServerFlight(hello=hello)
            if len(payload) < 2:
                return MalformedReply(reason="alert record shorter than 2 bytes")
            return AlertReply(level=payload[0], description=payload[1])
        if content_type != _HANDSHAKE:
            if hello is not None:
                return ServerFlight(hello=hello)
            return MalformedReply(reason=f"record type {content_type} before ServerHello")
        handshake += payload
        while len(handshake) - msg_pos >= 4:
            msg_type = handshake[msg_pos]
            msg_len = int.from_bytes(handshake[msg_pos + 1 : msg_pos + 4], "big")
            if len(handshake) - msg_pos - 4 < msg_len:
                break
            body = bytes(handshake[msg_pos + 4 : msg_pos + 4 + msg_len])
            msg_pos += 4 + msg_len
            if hello is None:
                if msg_type != 2:
                    return MalformedReply(reason=f"handshake message {msg_type} before ServerHello")
                try:
                    hello = _parse_server_hello(body)
                except _Truncated:
                    return MalformedReply(reason="truncated ServerHello")
                tls13 = hello.version == 0x0304 or hello.is_hello_retry_request
                if not want_key_exchange or tls13:
                    return ServerFlight(hello=hello)
                continue
            if msg_type == 12:  # ServerKeyExchange
                try:
                    params = _parse_key_exchange(body, hello.cipher_suite)
                except _Truncated:
                    return MalformedReply(reason="truncated ServerKeyExchange")
                return ServerFlight(hello=hello, key_exchange=params)
            if msg_type == 14:  # ServerHelloDone without a key exchange: RSA
                return ServerFlight(hello=hello)
            if msg_type not in (11, 13, 22):  # Certificate, CertificateRequest, Status
                return ServerFlight(hello=hello)


def build_heartbeat_request(version: int, *, claimed_length: int = 0x4000) -> bytes:
    """A heartbeat request record that claims a payload it does not carry (Heartbleed).

    RFC 6520 says a request whose ``payload_length`` exceeds what it carries MUST be
    discarded silently. OpenSSL 1.0.1 to 1.0.1f (CVE-2014-0160) answered it, copying
    ``claimed_length`` bytes of its own memory into the response.

    Args:
        version: The record version, the one the server chose in its ServerHello.
        claimed_length: The payload length claimed; nothing of it is sent.

    Returns:
        The record bytes (sent in clear, before the handshake completes).
    """
    message = _u8(1) + _u16(claimed_length)  # heartbeat_request, payload_length, no payload
    return _u8(_HEARTBEAT) + _u16(version) + _vec16(message)


def _records(data: bytes, limit: int | None = None) -> tuple[list[tuple[int, bytes]], bool]:
    """The whole records at the start of ``data``, and whether the stream is cut short.

    With ``limit``, it stops after ``limit + 1`` records (enough to say "too many").
    """
    records: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 5 and (limit is None or len(records) <= limit):
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if len(data) - pos - 5 < length:
            return records, True
        records.append((data[pos], data[pos + 5 : pos + 5 + length]))
        pos += 5 + length
    return records, pos != len(data)


def server_flight_done(data: bytes) -> bool | None:
    """Whether the server's first TLS 1.2-or-earlier flight in ``data`` has ended.

    Returns:
        ``True`` once ServerHelloDone has arrived, ``False`` when the server sent an
        alert or something other than handshake records instead, ``None`` while more
        bytes are needed.
    """
    records, _cut = _records(data, MAX_REPLY_RECORDS)
    if len(records) > MAX_REPLY_RECORDS:
        return False  # endless tiny records are no flight (see MAX_REPLY_RECORDS)
    handshake = bytearray()  # bytes += would copy the whole prefix per record
    for content_type, payload in records:
        if content_type != _HANDSHAKE:
            return False
        handshake += payload
    pos = 0
    while len(handshake) - pos >= 4:
        msg_type = handshake[pos]
        msg_len = int.from_bytes(handshake[pos + 1 : pos + 4], "big")
        if msg_type == 14:
            return True
        pos += 4 + msg_len
    return None


def heartbeat_answered(data: bytes) -> bool | None:
    """Whether what a server sent after its first flight includes a heartbeat response.

    Args:
        data: The bytes received after the ServerHelloDone.

    Returns:
        ``True`` when a heartbeat record came back (the server answered a request it
        must discard: Heartbleed), ``False`` when an alert or other records came back
        instead, ``None`` while nothing decisive has arrived.
    """
    if len(data) < 5 or len(data) - 5 < int.from_bytes(data[3:5], "big"):
        return None  # the first record is not complete yet
    return data[0] == _HEARTBEAT


def parse_sslv2_reply(data: bytes) -> SslV2ServerHello | AlertReply | MalformedReply | Incomplete:
    """Parse the answer to an SSLv2 CLIENT-HELLO.

    Args:
        data: Every byte received so far.

    Returns:
        An ``SslV2ServerHello`` when the server speaks SSLv2, an ``AlertReply`` or
        ``MalformedReply`` when it answers otherwise, ``Incomplete`` when more bytes
        are needed.  Never raises.
    """
    if not data:
        return Incomplete()
    if data[0] in (_ALERT, _HANDSHAKE):
        reply = parse_server_reply(data)
        if isinstance(reply, AlertReply | Incomplete | MalformedReply):
            return reply
        return MalformedReply(reason="TLS ServerHello in answer to an SSLv2 hello")
    if not data[0] & 0x80:
        return MalformedReply(reason="not an SSLv2 record", looks_like_tls=False)
    if len(data) < 2:
        return Incomplete()
    length = ((data[0] & 0x7F) << 8) | data[1]
    if len(data) < 2 + length:
        return Incomplete()
    reader = _Reader(data[2 : 2 + length])
    try:
        if reader.u8() != 4:
            return MalformedReply(reason="SSLv2 record is not a SERVER-HELLO")
        reader.u8()  # session id hit
        reader.u8()  # certificate type
        version = reader.u16()
        cert_len = reader.u16()
        specs_len = reader.u16()
        reader.u16()  # connection id length
        cert = reader.take(cert_len)
        raw_specs = reader.take(specs_len)
    except _Truncated:
        return MalformedReply(reason="truncated SSLv2 SERVER-HELLO")
    if specs_len % 3:
        return MalformedReply(reason="SSLv2 cipher specs not a multiple of 3 bytes")
    specs = tuple(int.from_bytes(raw_specs[i : i + 3], "big") for i in range(0, specs_len, 3))
    return SslV2ServerHello(version=version, cipher_specs=specs, certificate_der=cert)
