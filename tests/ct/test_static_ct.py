"""static-ct-api: checkpoints, tile paths, data and hash tiles, and the tree head from tiles.

The tiles are Geomys' real Navigli2025h2 tiles; their tree heads MTH(1024) and MTH(778) are
the values recorded with the data. Checkpoints are ParcelYard2026h2's real one and
Sunlight's synthetic test checkpoint (whose key ships with it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.entry import EntryType
from certvigil.ct.errors import CheckpointError, SignatureError, TileError
from certvigil.ct.merkle import fold_subtrees, leaf_hash, root_from_leaf_hashes
from certvigil.ct.signature import log_id, tree_head_message
from certvigil.ct.static_ct import (
    Checkpoint,
    TilePath,
    check_issuer,
    check_leaf_hashes,
    checkpoint_origin,
    data_tile,
    encode_tile_index,
    issuer_path,
    parse_checkpoint,
    parse_data_tile,
    parse_hash_tile,
    prefix_roots_from_tiles,
    rfc6962_key_id,
    root_from_tiles,
    tiles_for_entries,
    verify_checkpoint,
    verify_root_from_tiles,
)
from tests.ct.conftest import DATA, data

NAVIGLI = "static-ct/navigli2025h2/"
MTH_1024 = base64.b64decode("EMfGG85uIddeOXt5/wdQGP3IQd0COCqoLg9Q6CsPLJA=")
MTH_778 = base64.b64decode("+WnHOMRZl/LG1669oeskbdK9bcO4nkrY1cfVyknC52U=")
PARCELYARD_LOG_ID = base64.b64decode("utuIpG+cr6QJDoLlk1bbbni0pT9YLbCBl5UkLym2jJg=")


def _level0() -> dict[TilePath, Sequence[bytes]]:
    tiles: dict[TilePath, Sequence[bytes]] = {}
    for index in range(4):
        path = TilePath(0, index)
        tiles[path] = parse_hash_tile(data(NAVIGLI + path.path), path)
    partial = TilePath(0, 3, 10)
    tiles[partial] = parse_hash_tile(data(NAVIGLI + partial.path), partial)
    return tiles


@pytest.mark.parametrize(
    ("index", "encoded"),
    [(0, "000"), (5, "005"), (999, "999"), (1000, "x001/000"), (1234067, "x001/x234/067")],
)
def test_tile_index_encoding(index: int, encoded: str) -> None:
    """Tile indexes are 3-digit groups, every group but the last prefixed with x."""
    assert encode_tile_index(index) == encoded


def test_tile_paths_and_the_tiles_a_range_needs() -> None:
    """Full tiles have no width suffix; the tree's last tile is partial (.p/W)."""
    assert TilePath(0, 1234067).path == "tile/0/x001/x234/067"
    assert data_tile(3, 10).path == "tile/data/003.p/10"
    assert issuer_path(bytes(range(32))).startswith("issuer/000102")
    assert [t.path for t in tiles_for_entries(250, 1000, 778)] == [
        "tile/data/000",
        "tile/data/001",
        "tile/data/002",
        "tile/data/003.p/10",
    ]
    assert [t.path for t in tiles_for_entries(512, 768, 1034)] == ["tile/data/002"]


def test_real_checkpoint_parses_with_all_four_signature_lines() -> None:
    """ParcelYard's checkpoint: origin, size, root, four lines; the log's key ID is the RFC's."""
    checkpoint = parse_checkpoint(data("static-ct/parcelyard2026h2/checkpoint"))

    assert checkpoint.origin == "parcelyard2026h2.prod.certificate.transparency.goog"
    assert checkpoint.tree_size == 1587930800
    assert len(checkpoint.root_hash) == 32
    assert [s.name for s in checkpoint.signatures] == [checkpoint.origin] * 2 + [
        "witness.navigli.sunlight.geomys.org",
        "witness.stagemole.eu",
    ]
    assert checkpoint.signatures[0].key_id == rfc6962_key_id(checkpoint.origin, PARCELYARD_LOG_ID)
    assert checkpoint.signatures[0].body[8:10] == b"\x04\x03"  # SHA-256, ECDSA


def _skylight() -> tuple[bytes, bytes]:
    meta = json.loads(data("static-ct/skylight-synthetic/log.v3.json"))
    return data("static-ct/skylight-synthetic/checkpoint"), base64.b64decode(meta["key"])


def test_checkpoint_signature_verifies_and_unknown_lines_are_ignored() -> None:
    """Sunlight's test checkpoint verifies with its key, also with foreign signature lines added."""
    text, key = _skylight()
    meta = json.loads(data("static-ct/skylight-synthetic/log.v3.json"))
    origin = checkpoint_origin(meta["submission_url"])
    assert origin == "rome2026h1.example.org"
    verified = verify_checkpoint(parse_checkpoint(text), key, origin=origin)
    assert verified.timestamp == 1767139200000
    assert verified.checkpoint.tree_size == 300

    foreign = data("static-ct/parcelyard2026h2/checkpoint").decode().split("\n\n")[1]
    with_witnesses = parse_checkpoint(text + foreign.encode())
    assert len(with_witnesses.signatures) == 5
    verify_checkpoint(with_witnesses, key)


def test_checkpoint_with_altered_size_wrong_origin_or_no_log_signature_fails() -> None:
    """A changed tree size, another origin or only foreign signatures are refused."""
    text, key = _skylight()
    altered = parse_checkpoint(text.replace(b"\n300\n", b"\n301\n"))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_checkpoint(altered, key)
    with pytest.raises(SignatureError, match="is not the log's"):
        verify_checkpoint(parse_checkpoint(text), key, origin="other.example.org")
    with pytest.raises(SignatureError, match="no signature line by the log's key"):
        verify_checkpoint(parse_checkpoint(data("static-ct/parcelyard2026h2/checkpoint")), key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"origin\n10\n", "no blank line"),
        (b"origin\n\n", "needs an origin, a tree size and a root hash"),
        (b"origin\n010\nAAAA\n\n", 'tree size "010"'),
        (b"origin\n10\nAAAA\n\n", "root hash is 3 bytes"),
        (b"origin\n10\n!!\n\n", "root hash is not valid base64"),
        (b"o\n1\n" + base64.b64encode(bytes(32)) + b"\n\n- k AAAAAAAA\n", "signature line 1"),
        (b"o\n1\n" + base64.b64encode(bytes(32)) + b"\n\n\xe2\x80\x94 k AAAAAAAA", "newline"),
        (b"o\x1b[2J\n1\n", "control characters"),
        (b"\xff\n", "not UTF-8"),
    ],
)
def test_malformed_checkpoints_are_named(text: bytes, message: str) -> None:
    """Each kind of malformed checkpoint raises CheckpointError saying what is wrong."""
    with pytest.raises(CheckpointError, match=message):
        parse_checkpoint(text)


def _sign_checkpoint(origin: str, size: int, root: bytes) -> tuple[bytes, bytes]:
    """A checkpoint for (size, root) signed like a static log, and the key's DER."""
    private = ec.generate_private_key(ec.SECP256R1())
    key = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    stamp = 1746230400000
    raw = private.sign(tree_head_message(stamp, size, root), ec.ECDSA(hashes.SHA256()))
    body = stamp.to_bytes(8, "big") + b"\x04\x03" + len(raw).to_bytes(2, "big") + raw
    line = base64.b64encode(rfc6962_key_id(origin, log_id(key)) + body).decode()
    note = f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n\n\u2014 {origin} {line}\n"
    return note.encode(), key


def test_tree_head_from_real_tiles_matches_a_signed_checkpoint() -> None:
    """Navigli's level-0 tiles give MTH(1024) and MTH(778); a checkpoint of that head verifies."""
    tiles = _level0()

    assert root_from_tiles(1024, tiles.get) == MTH_1024
    assert root_from_tiles(778, tiles.get) == MTH_778
    note, key = _sign_checkpoint("navigli2025h2.sunlight.geomys.org", 1024, MTH_1024)
    checkpoint = verify_checkpoint(parse_checkpoint(note), key).checkpoint
    verify_root_from_tiles(checkpoint.tree_size, checkpoint.root_hash, tiles.get)


def test_tree_head_from_level_one_tiles_equals_the_one_from_level_zero() -> None:
    """A served level-1 tile is used as is, and agrees with the level-0 computation."""
    tiles = _level0()
    level1 = TilePath(1, 0, 4)
    tiles[level1] = [root_from_leaf_hashes(tiles[TilePath(0, i)]) for i in range(4)]
    asked: list[TilePath] = []

    def source(path: TilePath) -> Sequence[bytes] | None:
        asked.append(path)
        return tiles.get(path)

    assert root_from_tiles(1024, source) == MTH_1024
    assert asked == [level1]


def test_every_size_from_tiles_equals_the_direct_tree_hash() -> None:
    """For each size 1..1024 the root from tiles equals the root over the leaf hashes."""
    tiles = _level0()
    leaves = [h for i in range(4) for h in tiles[TilePath(0, i)]]

    def source(path: TilePath) -> Sequence[bytes] | None:
        if path.level:
            return None
        first = path.index * 256
        return leaves[first : first + path.width]

    for size in range(1, 1025):
        assert root_from_tiles(size, source) == root_from_leaf_hashes(leaves[:size])


def test_prefix_roots_from_the_tiles_of_a_larger_tree_give_each_older_root() -> None:
    """From the 1024-leaf tree's tiles, the compact range of the first k leaves folds to
    MTH(k): the recorded MTH(778) and, for every k, the direct tree hash."""
    tiles = _level0()
    leaves = [h for i in range(4) for h in tiles[TilePath(0, i)]]

    def source(path: TilePath) -> Sequence[bytes] | None:
        return None if path.level else tiles[TilePath(0, path.index)][: path.width]

    assert fold_subtrees(prefix_roots_from_tiles(778, 1024, source)) == MTH_778
    for size in (*range(300), *range(500, 530), 767, 768, 769, 1023, 1024):
        roots = prefix_roots_from_tiles(size, 1024, source)
        assert fold_subtrees(roots) == root_from_leaf_hashes(leaves[:size])
        assert len(roots) == size.bit_count()
    with pytest.raises(ValueError, match="between 0 and tree_size"):
        prefix_roots_from_tiles(1025, 1024, source)


def test_a_wrong_hash_tile_is_detected_against_the_checkpoint() -> None:
    """A hash tile with one changed hash gives another root, which is reported."""
    tiles = _level0()
    changed = list(tiles[TilePath(0, 2)])
    changed[17] = hashlib.sha256(b"not this leaf").digest()
    tiles[TilePath(0, 2)] = changed

    with pytest.raises(TileError, match="not the checkpoint's"):
        verify_root_from_tiles(1024, MTH_1024, tiles.get)


def test_real_data_tiles_parse_and_match_their_hash_tiles() -> None:
    """All 1024 Navigli entries are precerts whose leaf hashes are the level-0 hashes."""
    tiles = _level0()
    count = 0
    for index in range(4):
        tile = parse_data_tile(data(NAVIGLI + data_tile(index).path), data_tile(index))
        assert tile.malformed == ()
        assert [e.index for e in tile.entries] == list(range(index * 256, index * 256 + 256))
        assert all(e.entry.entry_type is EntryType.PRECERT for e in tile.entries)
        assert all(e.precertificate and len(e.chain_fingerprints) >= 1 for e in tile.entries)
        check_leaf_hashes(tile, tiles[TilePath(0, index)])
        count += len(tile.entries)
    assert count == 1024
    second = parse_data_tile(data(NAVIGLI + "tile/data/000"), data_tile(0)).entries[2]
    assert second.entry.extensions == bytes.fromhex("0000050000000002")


def test_partial_tile_is_the_prefix_of_the_full_one() -> None:
    """tile/data/003.p/10 holds the first ten entries of tile/data/003, byte for byte."""
    full = parse_data_tile(data(NAVIGLI + "tile/data/003"), data_tile(3))
    partial = parse_data_tile(data(NAVIGLI + "tile/data/003.p/10"), data_tile(3, 10))

    assert partial.entries == full.entries[:10]
    check_leaf_hashes(partial, _level0()[TilePath(0, 3, 10)])


def test_a_data_tile_with_wrong_data_is_detected() -> None:
    """A byte changed inside a certificate of a real tile fails the leaf-hash check by index."""
    raw = bytearray(data(NAVIGLI + "tile/data/001"))
    raw[len(raw) // 2] ^= 0x01
    tile = parse_data_tile(bytes(raw), data_tile(1))

    with pytest.raises(TileError, match=r"tile/data/001: entry 3\d\d: its leaf hash is not"):
        check_leaf_hashes(tile, _level0()[TilePath(0, 1)])


def test_every_fingerprint_names_a_served_issuer() -> None:
    """Each chain fingerprint in the tiles is an issuer file whose SHA-256 it is."""
    fingerprints = {
        fp
        for index in range(4)
        for entry in parse_data_tile(
            data(NAVIGLI + data_tile(index).path), data_tile(index)
        ).entries
        for fp in entry.chain_fingerprints
    }
    assert len(fingerprints) == 5
    for fp in fingerprints:
        check_issuer(fp, (DATA / NAVIGLI / issuer_path(fp)).read_bytes())
    with pytest.raises(TileError, match="another SHA-256"):
        check_issuer(next(iter(fingerprints)), b"0\x00")


@pytest.mark.parametrize(
    ("raw", "tile", "message"),
    [
        (lambda b: b[:-1], data_tile(0), "entry 255 .position 255.: chain fingerprints"),
        (lambda b: b + b"\x00", data_tile(0), "1 bytes after entry 255"),
        (lambda b: b, data_tile(0, 255), "bytes after entry 254"),
        (lambda b: b, data_tile(1), "entry 256: its leaf_index extension says 0"),
        (lambda b: b[:8] + b"\x00\x05" + b[10:], data_tile(0), "unknown entry_type 5"),
    ],
)
def test_broken_tiles_are_refused_with_the_entry_named(
    raw: object, tile: TilePath, message: str
) -> None:
    """Broken framing, a wrong width or a wrong leaf_index rejects the tile, naming the entry."""
    body = data(NAVIGLI + "tile/data/000")
    with pytest.raises(TileError, match=message):
        parse_data_tile(raw(body), tile)  # type: ignore[operator]


def test_a_hash_tile_of_the_wrong_length_is_refused() -> None:
    """A level-0 tile shorter than its width is refused."""
    with pytest.raises(TileError, match=r"tile/0/003\.p/10: 319 bytes, expected 320"):
        parse_hash_tile(data(NAVIGLI + "tile/0/003.p/10")[:-1], TilePath(0, 3, 10))


_TILE = data(NAVIGLI + "tile/data/003.p/10")


@given(tile=st.binary(max_size=400), width=st.integers(1, 3))
@example(tile=bytes(8) + b"\x00\x01" + bytes(32) + b"\x00\x00\x01\x30", width=1)
def test_random_bytes_raise_only_tile_errors(tile: bytes, width: int) -> None:
    """Random data tiles parse or raise TileError."""
    try:
        parse_data_tile(tile, data_tile(0, width))
    except TileError:
        pass


@given(position=st.integers(0, len(_TILE) - 1), value=st.integers(0, 255))
def test_damaged_real_tiles_raise_only_tile_errors(position: int, value: int) -> None:
    """The real partial tile with a byte changed parses (maybe as malformed) or raises TileError."""
    raw = bytearray(_TILE)
    raw[position] = value
    try:
        tile = parse_data_tile(bytes(raw), data_tile(3, 10))
    except TileError:
        return
    assert len(tile.entries) + len(tile.malformed) == 10


@given(text=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(text=b"o\n1\n" + base64.b64encode(bytes(32)) + b"\n\n\xe2\x80\x94 o AAAAAAAA\n")
def test_random_checkpoints_raise_only_checkpoint_or_signature_errors(text: bytes) -> None:
    """Random notes parse or raise CheckpointError; verifying raises only SignatureError."""
    _, key = _skylight()
    try:
        checkpoint = parse_checkpoint(text)
    except CheckpointError:
        return
    try:
        verify_checkpoint(checkpoint, key)
    except SignatureError:
        pass


@given(body=st.binary(max_size=120))
@example(body=bytes(8) + b"\x04\x03\x00\x01\x00")
def test_forged_log_signature_lines_raise_signature_errors(body: bytes) -> None:
    """A line with the log's name and key ID but any body raises SignatureError."""
    text, key = _skylight()
    origin = "rome2026h1.example.org"
    checkpoint = parse_checkpoint(text)
    forged = Checkpoint(
        origin,
        checkpoint.tree_size,
        checkpoint.root_hash,
        (),
        (type(checkpoint.signatures[0])(origin, rfc6962_key_id(origin, log_id(key)), body),),
    )
    with pytest.raises(SignatureError):
        verify_checkpoint(forged, key)


def test_leaf_hash_of_the_tile_is_the_rfc6962_leaf_hash() -> None:
    """A TileLeaf's leaf hash is SHA-256(0 ‖ 0 0 ‖ TimestampedEntry), the RFC 6962 leaf hash."""
    entry = parse_data_tile(data(NAVIGLI + "tile/data/000"), data_tile(0)).entries[0]
    ts = entry.entry
    encoded = (
        ts.timestamp.to_bytes(8, "big")
        + b"\x00\x01"
        + (ts.issuer_key_hash or b"")
        + len(ts.certificate).to_bytes(3, "big")
        + ts.certificate
        + len(ts.extensions).to_bytes(2, "big")
        + ts.extensions
    )
    assert entry.leaf_hash == leaf_hash(b"\x00\x00" + encoded)
