"""A local HTTP server playing CT logs (RFC 6962 and static-ct-api) for tests.

No real CT log can run here, so this threaded HTTP server on 127.0.0.1 (port 0) plays
them: it serves recorded log answers byte for byte (real ``get-sth`` and ``get-entries``
answers, real data, hash tiles and issuers of Navigli2025h2 from ``tests/data/ct``), and
what the real data lacks it derives the way a log does: level-1 hash tiles from the real
level-0 tiles, and checkpoints or tree heads over the real entries signed with a key the
test generates. Faults are injected on request: error statuses with ``Retry-After``,
gzip on every answer, fewer entries than asked, a body that never ends, replaced files.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certvigil.ct.codec import Reader
from certvigil.ct.entry import EntryType, read_timestamped_entry
from certvigil.ct.merkle import leaf_hash, root_from_leaf_hashes
from certvigil.ct.signature import log_id, tree_head_message
from certvigil.ct.static_ct import encode_tile_index, rfc6962_key_id
from tests.support.quiet_http import QuietHTTPServer

DATA = Path(__file__).resolve().parent.parent / "data" / "ct"
NAVIGLI = DATA / "static-ct" / "navigli2025h2"


class TestLogKey:
    """An ECDSA P-256 log key generated for the test, signing tree heads and checkpoints."""

    __test__ = False

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def digitally_signed(self, message: bytes) -> bytes:
        """A TLS DigitallySigned (SHA-256, ECDSA) over ``message``."""
        signature = self.private.sign(message, ec.ECDSA(hashes.SHA256()))
        return bytes([4, 3]) + len(signature).to_bytes(2, "big") + signature

    def sth(self, size: int, root: bytes, timestamp: int = 1_767_225_600_000) -> bytes:
        """A ``get-sth`` answer for this tree head."""
        signed = self.digitally_signed(tree_head_message(timestamp, size, root))
        return json.dumps(
            {
                "tree_size": size,
                "timestamp": timestamp,
                "sha256_root_hash": base64.b64encode(root).decode(),
                "tree_head_signature": base64.b64encode(signed).decode(),
            }
        ).encode()

    def checkpoint(
        self, origin: str, size: int, root: bytes, timestamp: int = 1_767_225_600_000
    ) -> bytes:
        """A checkpoint with the log's RFC6962NoteSignature line."""
        signed = self.digitally_signed(tree_head_message(timestamp, size, root))
        key_id = rfc6962_key_id(origin, log_id(self.der))
        line = base64.b64encode(key_id + timestamp.to_bytes(8, "big") + signed).decode()
        root_b64 = base64.b64encode(root).decode()
        return f"{origin}\n{size}\n{root_b64}\n\n\u2014 {origin} {line}\n".encode()


@dataclass
class Fault:
    """Answer the next ``count`` requests whose path starts with ``prefix`` with ``status``."""

    prefix: str
    status: int
    count: int
    retry_after: str | None = None


@dataclass
class EntriesLog:
    """An RFC 6962 log's entries (``{"leaf_input", "extra_data"}``) from index ``first``."""

    first: int
    entries: list[dict[str, str]]
    max_per_answer: int = 1000


@dataclass
class _Site:
    """What one log serves.

    ``get-sth-consistency`` is answered from ``tree`` (the leaf hashes of the tree the
    log signs), by default the leaves of ``entries`` (a file of that name, when set, is
    served instead); ``forge_consistency`` flips a bit of each proof.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    entries: EntriesLog | None = None
    tree: list[bytes] | None = None
    forge_consistency: bool = False


class CtLogServer:
    """The server: sites under path prefixes (``/navigli/``, ``/argon/``), started on enter."""

    def __init__(self) -> None:
        self.sites: dict[str, _Site] = {}
        self.faults: list[Fault] = []
        self.gzip = False
        self.stream_forever: set[str] = set()
        self.requests: list[str] = []
        self.holds: dict[str, tuple[threading.Event, threading.Event]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._answer(self)

        self._http = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> CtLogServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()

    def url(self, site: str) -> str:
        """The base URL of a site (ending in ``/``)."""
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/{site}/"

    def site(self, name: str) -> _Site:
        """The site ``name``, made when first asked for."""
        return self.sites.setdefault(name, _Site())

    def count(self, fragment: str) -> int:
        """How many requests so far had ``fragment`` in their path."""
        with self._lock:
            return sum(fragment in r for r in self.requests)

    def inject(self, fault: Fault) -> None:
        """Add a fault (the first matching fault with a count left answers)."""
        with self._lock:
            self.faults.append(fault)

    def hold(self, path: str) -> tuple[threading.Event, threading.Event]:
        """Hold requests for ``path`` (below a site): the first event is set when one
        arrives, which then waits until the second is set (at most a minute)."""
        events = (threading.Event(), threading.Event())
        with self._lock:
            self.holds[path] = events
        return events

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        name, _, path = parts.path.lstrip("/").partition("/")
        held = self.holds.get(path)
        if held is not None:
            held[0].set()
            held[1].wait(timeout=60)
        with self._lock:
            self.requests.append(parts.path + ("?" + parts.query if parts.query else ""))
            fault = next(
                (f for f in self.faults if f.count > 0 and path.startswith(f.prefix)), None
            )
            if fault is not None:
                fault.count -= 1
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(handler, fault.status, b"fault injected\n", headers)
        if path in self.stream_forever:
            return self._stream(handler)
        site = self.sites.get(name)
        body: bytes | None = None
        if site is not None and path == "ct/v1/get-entries" and site.entries is not None:
            body = _entries_answer(site.entries, parse_qs(parts.query))
        elif site is not None and path == "ct/v1/get-sth-consistency":
            body = site.files.get(path) or _consistency_answer(site, parse_qs(parts.query))
        elif site is not None:
            body = site.files.get(path)
        if body is None:
            return self._send(handler, 404, b"not found\n", {})
        self._send(handler, 200, body, {})

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        if self.gzip and status == 200:
            body = gzip.compress(body)
            headers = {**headers, "Content-Encoding": "gzip"}
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"x" * 1024
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            while not self._stop.is_set():
                handler.wfile.write(frame)
                handler.wfile.flush()
                time.sleep(0.01)
        except OSError:
            pass
        handler.close_connection = True


def _entries_answer(log: EntriesLog, query: dict[str, list[str]]) -> bytes | None:
    try:
        start, end = int(query["start"][0]), int(query["end"][0])
    except (KeyError, ValueError):
        return None
    first = start - log.first
    last = min(end - log.first, first + log.max_per_answer - 1, len(log.entries) - 1)
    chosen = log.entries[first : last + 1] if 0 <= first else []
    return json.dumps({"entries": chosen}).encode()


def _consistency_answer(site: _Site, query: dict[str, list[str]]) -> bytes | None:
    leaves = site.tree
    if leaves is None and site.entries is not None and site.entries.first == 0:
        leaves = [leaf_hash(base64.b64decode(e["leaf_input"])) for e in site.entries.entries]
    try:
        first, second = int(query["first"][0]), int(query["second"][0])
    except (KeyError, ValueError):
        return None
    if leaves is None or not 0 < first <= second <= len(leaves):
        return None
    proof = consistency_proof(first, leaves[:second])
    if site.forge_consistency and proof:
        proof[0] = bytes([proof[0][0] ^ 1]) + proof[0][1:]
    return json.dumps({"consistency": [base64.b64encode(p).decode() for p in proof]}).encode()


def consistency_proof(first: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(first, D[n]) over leaf hashes: what a log serves."""

    def subproof(m: int, nodes: list[bytes], whole: bool) -> list[bytes]:
        n = len(nodes)
        if m == n:
            return [] if whole else [root_from_leaf_hashes(nodes)]
        k = 1 << ((n - 1).bit_length() - 1)  # the largest power of two below n
        if m <= k:
            return [*subproof(m, nodes[:k], whole), root_from_leaf_hashes(nodes[k:])]
        return [*subproof(m - k, nodes[k:], False), root_from_leaf_hashes(nodes[:k])]

    return subproof(first, leaves, True)


# The real data, as logs.


def navigli_files(tree_size: int) -> dict[str, bytes]:
    """Navigli2025h2's real tiles and issuers, and the level-1 tile for ``tree_size``
    (778 or 1024) derived from the real level-0 tiles as the log would."""
    files = {
        str(path.relative_to(NAVIGLI)): path.read_bytes()
        for path in NAVIGLI.rglob("*")
        if path.is_file() and "names" not in path.parts
    }
    full = [files[f"tile/0/00{i}"] for i in range(tree_size // 256)]
    level1 = b"".join(
        root_from_leaf_hashes([t[j : j + 32] for j in range(0, len(t), 32)]) for t in full
    )
    files[f"tile/1/000.p/{len(full)}"] = level1
    return files


NAVIGLI_ROOTS = {
    778: base64.b64decode("+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U="),
    1024: base64.b64decode("EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA="),
}

ARGON = DATA / "rfc6962" / "argon2027h1"
ARGON_FIRST = 380_000_000


def argon_entries() -> list[dict[str, str]]:
    """The five real Argon2027h1 entries from index 380,000,000."""
    name = "get-entries_start_380000000_end_380000004_TRUNCATED-from-end_380000031.json"
    entries: list[dict[str, str]] = json.loads((ARGON / name).read_bytes())["entries"]
    return entries


def argon_sth() -> bytes:
    """A real Argon2027h1 ``get-sth`` answer (size 384,071,894)."""
    return (ARGON / "get-sth_tree_size_384071894.json").read_bytes()


def real_rfc6962_entries() -> list[dict[str, str]]:
    """The nine real RFC 6962 entries: Pilot's first four, then Argon's five."""
    pilot = json.loads((DATA / "rfc6962" / "pilot" / "get-entries_start_0_end_3.json").read_bytes())
    entries: list[dict[str, str]] = pilot["entries"] + argon_entries()
    return entries


def entries_root(entries: list[dict[str, str]]) -> bytes:
    """The Merkle tree hash over these entries' leaves."""
    return root_from_leaf_hashes(
        [hashlib.sha256(b"\x00" + base64.b64decode(e["leaf_input"])).digest() for e in entries]
    )


def navigli_leaves() -> list[tuple[bytes, bytes]]:
    """Navigli's 1,024 real TileLeafs, each as (TimestampedEntry, the rest of the leaf)."""
    leaves: list[tuple[bytes, bytes]] = []
    for index in range(4):
        reader = Reader((NAVIGLI / "tile" / "data" / f"00{index}").read_bytes())
        while reader.remaining:
            start = reader.pos
            entry = read_timestamped_entry(reader)
            middle = reader.pos
            if entry.entry_type is EntryType.PRECERT:
                reader.opaque(3, "pre_certificate")
            reader.opaque(2, "fingerprints")
            data = reader.data
            leaves.append((bytes(data[start:middle]), bytes(data[middle : reader.pos])))
    return leaves


def navigli_rfc6962_entries(count: int = 1024) -> list[dict[str, str]]:
    """Navigli's first ``count`` real precert leaves as RFC 6962 ``get-entries`` items
    (``leaf_input = 00 00 ‖ TimestampedEntry``; ``extra_data`` the PrecertChainEntry of
    the pre-certificate and the issuers its fingerprints name), as an RFC 6962 log
    holding the same certificates would serve them."""
    issuers = {
        bytes.fromhex(path.name): path.read_bytes() for path in (NAVIGLI / "issuer").iterdir()
    }
    entries: list[dict[str, str]] = []
    for entry, rest in navigli_leaves()[:count]:
        reader = Reader(rest)
        precertificate = reader.opaque(3, "pre_certificate")
        prints = reader.opaque(2, "fingerprints")
        chain = b"".join(
            len(issuers[prints[i : i + 32]]).to_bytes(3, "big") + issuers[prints[i : i + 32]]
            for i in range(0, len(prints), 32)
        )
        extra = (
            len(precertificate).to_bytes(3, "big")
            + precertificate
            + len(chain).to_bytes(3, "big")
            + chain
        )
        entries.append(
            {
                "leaf_input": base64.b64encode(b"\x00\x00" + entry).decode(),
                "extra_data": base64.b64encode(extra).decode(),
            }
        )
    return entries


def synthetic_static_log(size: int, shift: int = 0) -> tuple[dict[str, bytes], bytes]:
    """A static log of ``size`` entries (a multiple of 256) made of Navigli's real leaves,
    repeated with their ``leaf_index`` extension rewritten to their new place; its data
    tiles, level-0 and level-1 hash tiles and issuers, and its root hash. ``shift`` starts
    from another real leaf: another history, as a log that forked would serve."""
    if size % 256 or not 0 < size <= 256 * 256:
        raise ValueError("size is a multiple of 256, at most 65,536")
    real = navigli_leaves()
    files = {f"issuer/{path.name}": path.read_bytes() for path in (NAVIGLI / "issuer").iterdir()}
    every_hash: list[bytes] = []
    level1: list[bytes] = []
    for tile in range(size // 256):
        data: list[bytes] = []
        hashes: list[bytes] = []
        for position in range(256):
            index = tile * 256 + position
            entry, rest = real[(index + shift) % len(real)]
            # The leaf_index extension (00 0005 uint40) ends the TimestampedEntry.
            entry = entry[:-5] + index.to_bytes(5, "big")
            data.append(entry + rest)
            hashes.append(hashlib.sha256(b"\x00\x00\x00" + entry).digest())
        files[f"tile/data/{encode_tile_index(tile)}"] = b"".join(data)
        files[f"tile/0/{encode_tile_index(tile)}"] = b"".join(hashes)
        level1.append(root_from_leaf_hashes(hashes))
        every_hash += hashes
    width = "" if len(level1) == 256 else f".p/{len(level1)}"
    files[f"tile/1/000{width}"] = b"".join(level1)
    return files, root_from_leaf_hashes(every_hash)
