"""A scripted TLS responder on 127.0.0.1 for what OpenSSL 3 can no longer serve.

It answers the first flight only: an SSLv2 SERVER-HELLO, or a ServerHello and
ServerHelloDone (or an alert) chosen from a fixed policy, as an SSLv2/SSLv3/TLS 1.0
server with RC4, 3DES, compression and no RFC 5746 or RFC 7507 support would. It never
finishes a handshake, which the probes never ask for. With a heartbeat policy it also
plays OpenSSL 1.0.1f (``"leaks"``: answers a heartbeat request that claims more than it
carries with 16 KiB of "memory", CVE-2014-0160) or 1.0.1g (``"discards"`` it silently,
as RFC 6520 requires).
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Policy:
    """What the scripted server accepts."""

    versions: frozenset[int]
    suites: tuple[int, ...]  # server order
    sslv2_specs: tuple[int, ...] = ()
    compression: bool = False
    renegotiation_info: bool = False
    honours_fallback_scsv: bool = False
    heartbeat: str | None = None  # None, "leaks" or "discards"


def _alert(description: int) -> bytes:
    return b"\x15\x03\x01\x00\x02\x02" + bytes([description])


def _record(version: int, payload: bytes) -> bytes:
    return struct.pack("!BHH", 22, version, len(payload)) + payload


def _answer_sslv2(data: bytes, policy: Policy) -> bytes:
    length = ((data[0] & 0x7F) << 8) | data[1]
    body = data[2 : 2 + length]
    specs_len = struct.unpack("!H", body[3:5])[0]
    offered = [int.from_bytes(body[9 + i : 12 + i], "big") for i in range(0, specs_len, 3)]
    common = [s for s in policy.sslv2_specs if s in offered]
    if not common:
        return b""
    specs = b"".join(s.to_bytes(3, "big") for s in common)
    cert = b"\x30\x03\x02\x01\x00"
    hello = b"\x04\x00\x01\x00\x02" + struct.pack("!HHH", len(cert), len(specs), 16)
    hello += cert + specs + b"\x00" * 16
    return struct.pack("!H", 0x8000 | len(hello)) + hello


_HEARTBEAT_EXTENSION = 15


def _extension_types(block: bytes) -> set[int]:
    """The extension types in a ClientHello's extensions block (with its length)."""
    if len(block) < 2:
        return set()
    end = 2 + struct.unpack("!H", block[:2])[0]
    types, pos = set(), 2
    while pos + 4 <= min(end, len(block)):
        ext_type, length = struct.unpack("!HH", block[pos : pos + 4])
        types.add(ext_type)
        pos += 4 + length
    return types


def _answer_heartbeat(conn: socket.socket, version: bytes, policy: Policy) -> None:
    """After the flight: answer (or drop) a heartbeat request, as the policy says."""
    request = conn.recv(65536)
    if policy.heartbeat != "leaks" or len(request) < 8 or request[0] != 24:
        return
    claimed = struct.unpack("!H", request[6:8])[0]
    memory = (b"-----BEGIN RSA PRIVATE KEY-----" * 600)[:claimed]
    message = b"\x02" + struct.pack("!H", claimed) + memory + b"\x00" * 16
    conn.sendall(b"\x18" + version + struct.pack("!H", len(message)) + message)


def _answer_tls(data: bytes, policy: Policy) -> bytes:
    body = data[9:]
    client_version = struct.unpack("!H", body[:2])[0]
    pos = 34
    pos += 1 + body[pos]
    suites_len = struct.unpack("!H", body[pos : pos + 2])[0]
    offered = [
        struct.unpack("!H", body[pos + 2 + i : pos + 4 + i])[0] for i in range(0, suites_len, 2)
    ]
    pos += 2 + suites_len
    compressions = list(body[pos + 1 : pos + 1 + body[pos]])
    offered_extensions = _extension_types(body[pos + 1 + body[pos] :])
    candidates = [v for v in policy.versions if v <= min(client_version, 0x0303)]
    if not candidates:
        return _alert(70)
    version = max(candidates)
    if policy.honours_fallback_scsv and 0x5600 in offered and version < max(policy.versions):
        return _alert(86)
    chosen = next((s for s in policy.suites if s in offered), None)
    if chosen is None:
        return _alert(40)
    compression = 1 if policy.compression and 1 in compressions else 0
    hello = (
        struct.pack("!H", version)
        + b"\x22" * 32
        + b"\x00"
        + struct.pack("!HB", chosen, compression)
    )
    ext = b""
    if policy.renegotiation_info:
        ext += b"\xff\x01\x00\x01\x00"
    if policy.heartbeat is not None and _HEARTBEAT_EXTENSION in offered_extensions:
        ext += b"\x00\x0f\x00\x01\x01"
    if ext:
        hello += struct.pack("!H", len(ext)) + ext
    messages = b"\x02" + len(hello).to_bytes(3, "big") + hello + b"\x0e\x00\x00\x00"
    return _record(version, messages)


@dataclass
class ScriptedServer:
    """Serves ``policy`` on 127.0.0.1 in a thread until ``close``."""

    policy: Policy
    _listener: socket.socket = field(init=False)
    _thread: threading.Thread = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._listener.getsockname()[1])

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    data = conn.recv(65536)
                    if data and data[0] & 0x80:
                        conn.sendall(_answer_sslv2(data, self.policy))
                    elif len(data) > 9 and data[0] == 22:
                        answer = _answer_tls(data, self.policy)
                        conn.sendall(answer)
                        if self.policy.heartbeat is not None and answer[:1] == b"\x16":
                            _answer_heartbeat(conn, answer[1:3], self.policy)
                except (OSError, IndexError, struct.error):
                    pass  # a probe hung up or sent a hello this script does not parse

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
