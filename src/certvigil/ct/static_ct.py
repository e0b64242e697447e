"""static-ct-api (c2sp.org/static-ct-api): checkpoints, tile paths, data and hash tiles, tree head.

A static log serves a signed ``checkpoint`` (a C2SP signed note: origin, tree size, root
hash, then one signature line per signer) and immutable tiles: level-``L`` hash tiles of
up to 256 hashes of subtrees of 256^L leaves, and data tiles of up to 256 ``TileLeaf``
entries. From a verified checkpoint and the tiles, every leaf hash and the root are
recomputed here, so a log serving wrong data is caught.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from certvigil.ct.codec import DecodeError, Reader
from certvigil.ct.entry import (
    EntryType,
    LogEntry,
    check_der_sequence,
    check_entry_der,
    read_timestamped_entry,
)
from certvigil.ct.errors import CheckpointError, SignatureError, TileError
from certvigil.ct.merkle import EMPTY_ROOT, fold_subtrees, node_hash, subtree_sizes
from certvigil.ct.rfc6962 import MalformedEntry
from certvigil.ct.signature import log_id as compute_log_id
from certvigil.ct.signature import (
    parse_digitally_signed,
    tree_head_message,
    verify_digitally_signed,
)

TILE_WIDTH = 256
MAX_CHECKPOINT_BYTES = 64 * 1024
MAX_SIGNATURE_LINES = 100
MAX_DATA_TILE_BYTES = 64 * 1024 * 1024
MAX_TREE_SIZE = 2**63 - 1
MAX_FINGERPRINTS = 32
_EM_DASH = "\u2014"
_SIGNATURE_TYPE_RFC6962 = 0x05
_LEAF_INDEX_EXTENSION = 0
_SIZE_RE = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a signed note: the key's name, its 4-byte ID and the body."""

    name: str
    key_id: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A parsed checkpoint (signatures decoded, not yet verified).

    Attributes:
        origin: The log's origin line (its submission prefix without scheme).
        tree_size: Entries in the tree.
        root_hash: The tree's root hash.
        extensions: Any further body lines, as given.
        signatures: Every signature line, known or not.
    """

    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...]
    signatures: tuple[NoteSignature, ...]


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    """A checkpoint whose RFC 6962 signature by the log's key verified, with its timestamp."""

    checkpoint: Checkpoint
    timestamp: int


def parse_checkpoint(data: bytes) -> Checkpoint:
    """Parse a checkpoint and its signature lines.

    Raises:
        CheckpointError: The note is too big, not UTF-8, or a line is not as the
            tlog-checkpoint and signed-note specifications say (named in the message).
    """
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"checkpoint: {len(data)} bytes, more than {MAX_CHECKPOINT_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint: not UTF-8 text") from None
    if any(c != "\n" and not c.isprintable() for c in text):
        raise CheckpointError("checkpoint: contains control characters")
    body, separator, signed = text.partition("\n\n")
    if not separator:
        raise CheckpointError("checkpoint: no blank line before the signatures")
    lines = body.split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint: needs an origin, a tree size and a root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin or origin != origin.strip():
        raise CheckpointError("checkpoint: the origin line is empty or has surrounding spaces")
    if not _SIZE_RE.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise CheckpointError(f'checkpoint: tree size "{size_text[:30]}" is not a decimal size')
    root = _b64(root_text, "root hash")
    if len(root) != 32:
        raise CheckpointError(f"checkpoint: root hash is {len(root)} bytes, not 32")
    if any(not line for line in extensions):
        raise CheckpointError("checkpoint: empty extension line")
    if not signed.endswith("\n"):
        raise CheckpointError("checkpoint: does not end with a newline")
    signature_lines = signed[:-1].split("\n")
    if len(signature_lines) > MAX_SIGNATURE_LINES:
        raise CheckpointError(f"checkpoint: more than {MAX_SIGNATURE_LINES} signature lines")
    signatures = tuple(_signature_line(line, n) for n, line in enumerate(signature_lines, 1))
    return Checkpoint(origin, int(size_text), root, tuple(extensions), signatures)


def _signature_line(line: str, number: int) -> NoteSignature:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != _EM_DASH or not parts[1] or "+" in parts[1]:
        raise CheckpointError(
            f'checkpoint: signature line {number} is not "{_EM_DASH} <name> <base64>"'
        )
    raw = _b64(parts[2], f"signature line {number}")
    if len(raw) < 5:
        raise CheckpointError(f"checkpoint: signature line {number} is too short")
    return NoteSignature(parts[1], raw[:4], raw[4:])


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"checkpoint: {what} is not valid base64") from None


def rfc6962_key_id(name: str, log_id: bytes) -> bytes:
    """The signed-note key ID of a log's RFC6962NoteSignature.

    SHA-256(name ‖ LF ‖ 0x05 ‖ LogID)[:4], where LogID is the SHA-256 of the log's key.
    """
    material = name.encode() + b"\n" + bytes([_SIGNATURE_TYPE_RFC6962]) + log_id
    return hashlib.sha256(material).digest()[:4]


def checkpoint_origin(submission_url: str) -> str:
    """The origin a static log's checkpoint carries: its submission prefix without the
    scheme and the trailing slash (``https://log.example/2025h2/`` → ``log.example/2025h2``).
    """
    origin = submission_url.split("://", 1)[-1]
    return origin[:-1] if origin.endswith("/") else origin


def verify_checkpoint(
    checkpoint: Checkpoint, key_der: bytes, *, origin: str | None = None
) -> VerifiedCheckpoint:
    """Check the checkpoint's RFC6962NoteSignature with the log's key.

    Signature lines by other keys (witness cosignatures, a log's Ed25519 key) are ignored.
    Every line carrying the log's name and key ID must verify, and there must be one.

    Args:
        checkpoint: The parsed checkpoint.
        key_der: The log's key (DER SubjectPublicKeyInfo) from the log list.
        origin: The origin the log must have (its submission prefix without scheme);
            ``None`` accepts the checkpoint's own.

    Raises:
        SignatureError: Wrong origin, no signature by the log's key, or one that fails.
    """
    if origin is not None and checkpoint.origin != origin:
        raise SignatureError(
            f'checkpoint origin "{checkpoint.origin[:100]}" is not the log\'s "{origin}"'
        )
    key_id = rfc6962_key_id(checkpoint.origin, compute_log_id(key_der))
    timestamp: int | None = None
    for signature in checkpoint.signatures:
        if signature.name != checkpoint.origin or signature.key_id != key_id:
            continue
        if len(signature.body) < 12:
            raise SignatureError("checkpoint: the log's signature line is too short")
        stamp = int.from_bytes(signature.body[:8], "big")
        signed = parse_digitally_signed(signature.body[8:], "checkpoint signature")
        message = tree_head_message(stamp, checkpoint.tree_size, checkpoint.root_hash)
        verify_digitally_signed(
            key_der, signed, message, f"checkpoint of size {checkpoint.tree_size}"
        )
        timestamp = stamp
    if timestamp is None:
        raise SignatureError("checkpoint: no signature line by the log's key")
    return VerifiedCheckpoint(checkpoint, timestamp)


# Tile paths.


@dataclass(frozen=True, slots=True)
class TilePath:
    """Where a tile lives: ``level`` (``-1`` for data tiles), ``index`` and ``width``."""

    level: int
    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        """The tile's path under the monitoring prefix."""
        level = "data" if self.level < 0 else str(self.level)
        suffix = "" if self.width == TILE_WIDTH else f".p/{self.width}"
        return f"tile/{level}/{encode_tile_index(self.index)}{suffix}"


def encode_tile_index(index: int) -> str:
    """A tile index as path elements: 3-digit groups, all but the last prefixed ``x``."""
    if index < 0:
        raise ValueError("a tile index is not negative")
    digits = str(index)
    digits = "0" * (-len(digits) % 3) + digits
    groups = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    return "/".join([*(f"x{g}" for g in groups[:-1]), groups[-1]])


def data_tile(index: int, width: int = TILE_WIDTH) -> TilePath:
    """The data tile ``index`` of ``width`` entries."""
    return TilePath(-1, index, width)


def tiles_for_entries(start: int, end: int, tree_size: int) -> list[TilePath]:
    """The data tiles holding entries ``start`` to ``end`` (exclusive) of a tree of ``tree_size``.

    Full tiles where the tree has them; the last tile partial (``.p/W``) only when the
    tree ends inside it.
    """
    end = min(end, tree_size)
    tiles: list[TilePath] = []
    for index in range(start // TILE_WIDTH, (end + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, tree_size - index * TILE_WIDTH)
        tiles.append(data_tile(index, width))
    return tiles


def issuer_path(fingerprint: bytes) -> str:
    """Where a static log serves the issuer certificate with this SHA-256 fingerprint."""
    return "issuer/" + fingerprint.hex()


def check_issuer(fingerprint: bytes, der: bytes) -> None:
    """Raise unless ``der`` is the certificate whose SHA-256 is ``fingerprint``."""
    if hashlib.sha256(der).digest() != fingerprint:
        raise TileError(issuer_path(fingerprint), "the certificate served has another SHA-256")


# Tiles.


@dataclass(frozen=True, slots=True)
class DataTile:
    """The entries of a data tile, parsed, and those that could not be (by index)."""

    tile: TilePath
    entries: tuple[LogEntry, ...]
    malformed: tuple[MalformedEntry, ...]

    def leaf_hashes(self) -> list[bytes]:
        """Every entry's leaf hash in index order (malformed entries included)."""
        found = [(e.index, e.leaf_hash) for e in self.entries]
        found += [(m.index, m.leaf_hash or b"") for m in self.malformed]
        return [h for _, h in sorted(found)]


def parse_data_tile(data: bytes, tile: TilePath) -> DataTile:
    """Parse a data tile's TileLeaf entries.

    A TileLeaf whose framing is intact but whose certificate is not DER is recorded as
    malformed (with its leaf hash) and the others parse; broken framing, a wrong count
    or a ``leaf_index`` extension that disagrees with the entry's place rejects the tile.

    Raises:
        TileError: Naming the tile and the entry where it went wrong.
    """
    if len(data) > MAX_DATA_TILE_BYTES:
        raise TileError(tile.path, f"{len(data)} bytes, more than {MAX_DATA_TILE_BYTES}")
    reader = Reader(data)
    entries: list[LogEntry] = []
    malformed: list[MalformedEntry] = []
    first = tile.index * TILE_WIDTH
    for position in range(tile.width):
        index = first + position
        start = reader.pos
        try:
            entry = read_timestamped_entry(reader)
            leaf_end = reader.pos
            precertificate = None
            if entry.entry_type is EntryType.PRECERT:
                precertificate = reader.opaque(3, "pre_certificate", minimum=1)
            fingerprints = reader.opaque(2, "chain fingerprints")
        except DecodeError as exc:
            raise TileError(tile.path, f"entry {index} (position {position}): {exc}") from None
        if len(fingerprints) % 32 or len(fingerprints) > 32 * MAX_FINGERPRINTS:
            raise TileError(tile.path, f"entry {index}: chain fingerprints are not 32-byte hashes")
        stated = _leaf_index(entry.extensions)
        if stated != index:
            raise TileError(tile.path, f"entry {index}: its leaf_index extension says {stated}")
        leaf = hashlib.sha256(b"\x00\x00\x00" + data[start:leaf_end]).digest()
        try:
            check_entry_der(entry)
            if precertificate is not None:
                check_der_sequence(precertificate, "the pre_certificate")
        except DecodeError as exc:
            malformed.append(MalformedEntry(index, str(exc), leaf))
            continue
        entries.append(
            LogEntry(
                index=index,
                entry=entry,
                leaf_hash=leaf,
                chain_fingerprints=tuple(
                    fingerprints[i : i + 32] for i in range(0, len(fingerprints), 32)
                ),
                precertificate=precertificate,
            )
        )
    if reader.remaining:
        raise TileError(tile.path, f"{reader.remaining} bytes after entry {first + tile.width - 1}")
    return DataTile(tile, tuple(entries), tuple(malformed))


def _leaf_index(extensions: bytes) -> int | None:
    reader = Reader(extensions)
    try:
        while reader.remaining:
            kind = reader.uint(1, "extension type")
            value = reader.opaque(2, "extension data")
            if kind == _LEAF_INDEX_EXTENSION:
                return int.from_bytes(value, "big") if len(value) == 5 else None
    except DecodeError:
        return None
    return None


def parse_hash_tile(data: bytes, tile: TilePath) -> tuple[bytes, ...]:
    """The hashes of a hash tile (32 bytes for each of ``tile.width``).

    Raises:
        TileError: The tile is not exactly ``width`` hashes long.
    """
    if len(data) != 32 * tile.width:
        raise TileError(tile.path, f"{len(data)} bytes, expected {32 * tile.width}")
    return tuple(data[i : i + 32] for i in range(0, len(data), 32))


def check_leaf_hashes(tile: DataTile, level0: Sequence[bytes], offset: int = 0) -> None:
    """Raise unless each entry's leaf hash equals the level-0 hash tile's at its place.

    Args:
        tile: A parsed data tile.
        level0: The hashes of the level-0 tile with the same index.
        offset: Position in ``level0`` of the data tile's first entry (0 for aligned tiles).

    Raises:
        TileError: Naming the first entry whose hash differs.
    """
    hashes = tile.leaf_hashes()
    if len(level0) - offset < len(hashes):
        raise TileError(tile.tile.path, "the level-0 hash tile is shorter than the data tile")
    first = tile.tile.index * TILE_WIDTH
    for position, value in enumerate(hashes):
        if level0[offset + position] != value:
            raise TileError(
                tile.tile.path,
                f"entry {first + position}: its leaf hash is not the hash tile's "
                "(the log serves data that is not in its tree)",
            )


HashTileSource = Callable[[TilePath], Sequence[bytes] | None]
"""Returns the hashes of a hash tile, or ``None`` when that level is not available."""


def root_from_tiles(tree_size: int, hash_tile: HashTileSource) -> bytes:
    """The root hash of the tree of ``tree_size`` leaves, computed from hash tiles.

    Each perfect subtree in the binary decomposition of ``tree_size`` is read from the
    tile level that holds its height (or, when ``hash_tile`` returns ``None`` for a level
    above 0, computed from the level below), then the subtrees are folded. With the
    log's own higher-level tiles this reads at most a few tiles per level; computing a
    level from the one below costs 256 tiles per hash, which is for small trees and tests.

    Raises:
        TileError: A tile has the wrong number of hashes (or whatever ``hash_tile`` raises).
    """
    if tree_size == 0:
        return EMPTY_ROOT
    reader = _TileHashes(tree_size, hash_tile)
    roots = [reader.subtree(start, height) for start, height in subtree_sizes(tree_size)]
    return fold_subtrees(roots)


def verify_root_from_tiles(tree_size: int, root_hash: bytes, hash_tile: HashTileSource) -> None:
    """Raise unless the tiles give the checkpoint's root for ``tree_size``.

    Raises:
        TileError: The recomputed root differs (the log serves tiles that are not its tree).
    """
    computed = root_from_tiles(tree_size, hash_tile)
    if computed != root_hash:
        raise TileError(
            "tree",
            f"the root recomputed from the tiles for size {tree_size} is not the checkpoint's",
        )


def prefix_roots_from_tiles(
    prefix_size: int, tree_size: int, hash_tile: HashTileSource
) -> list[bytes]:
    """The compact range of the first ``prefix_size`` leaves, from the tiles of a larger tree.

    The perfect subtrees that the binary digits of ``prefix_size`` give (``subtree_sizes``)
    are whole subtrees of every larger tree too, so their hashes are in its tiles: folded,
    they give the root of the tree of ``prefix_size`` leaves (consistency between two
    checkpoints), and kept, they let leaves read from ``prefix_size`` on be checked
    against later tree heads (a tail that does not start at 0).

    Raises:
        TileError: A tile has the wrong number of hashes (or whatever ``hash_tile`` raises).
        ValueError: ``prefix_size`` is larger than ``tree_size``.
    """
    if not 0 <= prefix_size <= tree_size:
        raise ValueError("prefix_size must be between 0 and tree_size")
    reader = _TileHashes(tree_size, hash_tile)
    return [reader.subtree(start, height) for start, height in subtree_sizes(prefix_size)]


class _TileHashes:
    def __init__(self, tree_size: int, source: HashTileSource) -> None:
        self.tree_size = tree_size
        self.source = source
        self.cache: dict[TilePath, Sequence[bytes]] = {}

    def tile(self, level: int, index: int) -> Sequence[bytes]:
        nodes = self.tree_size >> (8 * level)
        width = min(TILE_WIDTH, nodes - index * TILE_WIDTH)
        path = TilePath(level, index, width)
        if path in self.cache:
            return self.cache[path]
        hashes = self.source(path)
        if hashes is None:
            if level == 0:
                raise TileError(path.path, "a level-0 hash tile is required")
            below = index * TILE_WIDTH
            hashes = [_perfect_root(self.tile(level - 1, below + i)) for i in range(width)]
        if len(hashes) != width:
            raise TileError(path.path, f"{len(hashes)} hashes, expected {width}")
        self.cache[path] = hashes
        return hashes

    def subtree(self, start: int, height: int) -> bytes:
        level, rest = divmod(height, 8)
        first = start >> (8 * level)
        hashes = self.tile(level, first // TILE_WIDTH)
        offset = first % TILE_WIDTH
        return _perfect_root(hashes[offset : offset + (1 << rest)])


def _perfect_root(hashes: Sequence[bytes]) -> bytes:
    """The root over a power-of-two count of sibling subtree hashes."""
    nodes = list(hashes)
    while len(nodes) > 1:
        nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
    return nodes[0]
