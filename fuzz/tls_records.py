"""Fuzz campaign over the TLS record codec (``certvigil.tls.records``).

Run from the repository root::

    PYTHONPATH=src .venv/bin/python fuzz/tls_records.py --inputs 100000 --seed 1

Each input is a server answer built from parts (ServerHello with random fields and
extensions, ServerKeyExchange for DHE/ECDHE/other suites, Certificate, CertificateStatus,
ServerHelloDone, alerts, ChangeCipherSpec, application data, heartbeats, SSLv2
SERVER-HELLOs), split across records at random and then mutated (bytes changed,
inserted, deleted, truncated), or plain random bytes. Each goes to every parser the
probes use (``parse_server_reply`` with and without the key exchange,
``parse_sslv2_reply``, ``server_flight_done``, ``heartbeat_answered``) and every
property of what they return is read; random ``ClientHelloSpec``s go to the builders,
which may refuse a spec only with ``ValueError``. The parsers promise never to raise:
any exception is a crash. An input that takes longer than ``--slow-ms`` is counted as
slow (the parsers run on every chunk a server sends). Prints inputs, crashes, distinct
crash kinds and slow inputs; exit status 1 when something crashed.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
import traceback
from collections import Counter

from certvigil.tls.cipher_suites import SUITES
from certvigil.tls.records import (
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

_SUITE_CODES = sorted(SUITES)
_EXTENSION_TYPES = (0, 5, 10, 11, 13, 15, 16, 23, 35, 43, 45, 51, 0xFF01, 0x7777)


def _u16(value: int) -> bytes:
    return struct.pack("!H", value & 0xFFFF)


def _u24(value: int) -> bytes:
    return (value & 0xFFFFFF).to_bytes(3, "big")


def _handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + _u24(len(body)) + body


class Generator:
    """Server answers and client specs from one random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def suite(self) -> int:
        rng = self.rng
        if _SUITE_CODES and rng.random() < 0.8:
            return rng.choice(_SUITE_CODES)
        return rng.randrange(0x10000)

    def server_hello(self) -> bytes:
        rng = self.rng
        version = rng.choice((0x0300, 0x0301, 0x0302, 0x0303, 0x0304, rng.randrange(0x10000)))
        extensions = b""
        for _ in range(rng.randrange(0, 5)):
            kind = rng.choice(_EXTENSION_TYPES)
            if kind == 43:
                body = _u16(rng.choice((0x0304, 0x0303, 0x7F1C)))
            elif kind == 51:
                body = _u16(rng.choice((23, 29, 0x11EC, rng.randrange(0x10000))))
                if rng.random() < 0.5:
                    body += _u16(32) + rng.randbytes(32)
            else:
                body = rng.randbytes(rng.randrange(0, 8))
            extensions += _u16(kind) + _u16(len(body)) + body
        session_id = rng.randbytes(rng.choice((0, 32, rng.randrange(0, 40))))
        random_bytes = (
            bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
            if rng.random() < 0.1
            else rng.randbytes(32)
        )
        body = (
            _u16(version)
            + random_bytes
            + bytes([len(session_id)])
            + session_id
            + _u16(self.suite())
            + bytes([rng.choice((0, 1, rng.randrange(256)))])
        )
        if extensions or rng.random() < 0.3:
            body += _u16(len(extensions)) + extensions
        return _handshake(2, body)

    def key_exchange(self) -> bytes:
        rng = self.rng
        kind = rng.randrange(3)
        if kind == 0:  # DHE: p, g, Ys, signature
            prime = rng.randbytes(rng.choice((64, 128, 256, 512)))
            body = _u16(len(prime)) + prime + _u16(1) + b"\x02" + _u16(8) + rng.randbytes(8)
        elif kind == 1:  # ECDHE: named curve
            point = rng.randbytes(rng.choice((32, 65)))
            body = b"\x03" + _u16(rng.choice((23, 24, 29, rng.randrange(0x10000))))
            body += bytes([len(point)]) + point
        else:
            body = rng.randbytes(rng.randrange(0, 64))
        return _handshake(12, body)

    def flight(self) -> bytes:
        rng = self.rng
        messages = [self.server_hello()]
        if rng.random() < 0.7:
            certificate = rng.randbytes(rng.randrange(0, 300))
            messages.append(
                _handshake(11, _u24(len(certificate) + 3) + _u24(len(certificate)) + certificate)
            )
        if rng.random() < 0.2:
            messages.append(_handshake(22, b"\x01" + _u24(4) + rng.randbytes(4)))
        if rng.random() < 0.7:
            messages.append(self.key_exchange())
        if rng.random() < 0.2:
            messages.append(_handshake(13, rng.randbytes(rng.randrange(0, 16))))
        if rng.random() < 0.8:
            messages.append(_handshake(14, b""))
        stream = b"".join(messages)
        records = b""
        position = 0
        while position < len(stream):
            size = rng.choice((len(stream), rng.randrange(1, 64), 1))
            chunk = stream[position : position + size]
            records += b"\x16" + _u16(rng.choice((0x0303, 0x0301))) + _u16(len(chunk)) + chunk
            position += size
        tail = rng.randrange(6)
        if tail == 0:
            records += b"\x15\x03\x03\x00\x02" + bytes([rng.choice((1, 2)), rng.randrange(256)])
        elif tail == 1:
            records += b"\x14\x03\x03\x00\x01\x01"
        elif tail == 2:
            records += build_heartbeat_request(0x0303, claimed_length=rng.randrange(0x10000))
        elif tail == 3:
            records += b"\x17\x03\x03" + _u16(16) + rng.randbytes(16)
        return records

    def sslv2(self) -> bytes:
        rng = self.rng
        cert = rng.randbytes(rng.randrange(0, 64))
        specs = rng.randbytes(3 * rng.randrange(0, 5) + rng.choice((0, 0, 1)))
        body = (
            b"\x04"
            + bytes([rng.randrange(2), 1])
            + _u16(2)
            + _u16(len(cert))
            + _u16(len(specs))
            + _u16(16)
            + cert
            + specs
            + rng.randbytes(16)
        )
        return _u16(0x8000 | len(body)) + body

    def trickle(self) -> bytes:
        """A ServerHello flight cut into one-byte records, up to 256 KB (a slow stream)."""
        rng = self.rng
        stream = self.server_hello() + _handshake(11, rng.randbytes(rng.randrange(1, 40000)))
        return b"".join(b"\x16\x03\x03\x00\x01" + stream[i : i + 1] for i in range(len(stream)))

    def answer(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.002:
            return self.trickle()
        if roll < 0.05:
            return rng.randbytes(rng.randrange(0, 600))
        if roll < 0.1:
            data = b"\x15\x03\x03\x00\x02" + bytes([2, rng.randrange(256)])
        elif roll < 0.2:
            data = self.sslv2()
        else:
            data = self.flight()
        mutable = bytearray(data)
        for _ in range(rng.choice((0, 0, 1, 2, 4))):
            if not mutable:
                break
            at = rng.randrange(len(mutable))
            kind = rng.randrange(4)
            if kind == 0:
                mutable[at] = rng.randrange(256)
            elif kind == 1:
                mutable[at:at] = rng.randbytes(rng.randrange(1, 6))
            elif kind == 2:
                del mutable[at : at + rng.randrange(1, 8)]
            else:
                del mutable[at:]
        return bytes(mutable)

    def spec(self) -> ClientHelloSpec:
        rng = self.rng
        protocol = rng.choice([p for p in TlsProtocol if p is not TlsProtocol.SSL_2_0])
        return ClientHelloSpec(
            protocol=protocol,
            cipher_suites=tuple(self.suite() for _ in range(rng.randrange(0, 40))),
            server_name=rng.choice((None, "example.test", "x" * rng.randrange(1, 300))),
            groups=tuple(rng.randrange(0x10000) for _ in range(rng.randrange(0, 6))),
            key_share_groups=tuple(
                rng.choice((23, 29, 24, 0x11EC)) for _ in range(rng.randrange(0, 3))
            ),
            compression_methods=tuple(rng.randrange(256) for _ in range(rng.randrange(0, 3))),
        )


def _read_reply(reply: object) -> None:
    """Read every property of a parser's answer, as the probes do."""
    if isinstance(reply, ServerFlight):
        hello = reply.hello
        repr((hello.version, hello.protocol, hello.selected_group, hello.has_renegotiation_info))
        hello.extension(43)
        if reply.key_exchange is not None:
            repr(reply.key_exchange)
    elif isinstance(reply, AlertReply):
        reply.name  # noqa: B018 - the property is what is exercised
    elif not isinstance(reply, MalformedReply | Incomplete | SslV2ServerHello):
        raise TypeError(f"unexpected reply type {type(reply).__name__}")


def run_one(generator: Generator) -> None:
    """One answer through every parser and one spec through the builders."""
    data = generator.answer()
    for want in (False, True):
        _read_reply(parse_server_reply(data, want_key_exchange=want))
    _read_reply(parse_sslv2_reply(data))
    if server_flight_done(data) not in (True, False, None):
        raise TypeError("server_flight_done answered something else")
    if heartbeat_answered(data) not in (True, False, None):
        raise TypeError("heartbeat_answered answered something else")
    try:
        hello = build_client_hello(generator.spec())
    except ValueError:
        pass
    else:
        if hello[0] != 0x16:
            raise AssertionError("a ClientHello record is not a handshake record")
    build_sslv2_client_hello()


def crash_kind(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "certvigil" in f.filename and "/fuzz/" not in f.filename]
    frame = (ours or frames)[-1]
    return f"{type(exc).__name__} at {frame.filename.split('src/')[-1]}:{frame.lineno}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--slow-ms", type=float, default=100.0)
    args = parser.parse_args()
    generator = Generator(random.Random(args.seed))
    crashes: Counter[str] = Counter()
    slow = 0
    slowest = 0.0
    started = time.monotonic()
    for _ in range(args.inputs):
        began = time.perf_counter()
        try:
            run_one(generator)
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            crashes[crash_kind(exc)] += 1
        spent = time.perf_counter() - began
        slowest = max(slowest, spent)
        slow += spent * 1000 > args.slow_ms
    elapsed = time.monotonic() - started
    print(
        f"TLS record codec: {args.inputs} inputs (seed {args.seed}), "
        f"{sum(crashes.values())} crashes, {len(crashes)} distinct kinds, "
        f"{slow} slower than {args.slow_ms:g} ms (slowest {slowest * 1000:.1f} ms), {elapsed:.0f} s"
    )
    for kind, number in crashes.most_common():
        print(f"  {number:6d}  {kind}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
