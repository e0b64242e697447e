"""Tailing a static-ct-api log over HTTP: Navigli2025h2's real tiles and issuers served
by a local log server, checkpoints over their real roots signed with a test key."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Iterator

import pytest

from certvigil.ct.entry import LogEntry
from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.fetch.static import IssuerCache, StaticReader
from certvigil.ct.fetch.tail import LogTail, TailItem, TailResult, TailState, tail_once
from certvigil.ct.log_list import CtLog, LogProtocol, LogState
from certvigil.ct.merkle import fold_subtrees, root_from_leaf_hashes
from certvigil.ct.rfc6962 import MalformedEntry
from certvigil.ct.signature import log_id
from certvigil.ct.static_ct import checkpoint_origin, data_tile, parse_data_tile
from tests.support.ct_log_server import (
    NAVIGLI_ROOTS,
    CtLogServer,
    Fault,
    TestLogKey,
    navigli_files,
    synthetic_static_log,
)

FAST = FetchPolicy(deadline=5.0, retries=3, backoff_base=0.01, backoff_cap=0.05)


class Navigli:
    """The Navigli2025h2 tiles served at ``/navigli/``, with a checkpoint of a chosen size."""

    def __init__(self, server: CtLogServer, key: TestLogKey) -> None:
        self.server = server
        self.key = key
        self.site = server.site("navigli")
        self.log = CtLog(
            description="Navigli2025h2 (local)",
            operator="test",
            log_id=log_id(key.der),
            key=key.der,
            protocol=LogProtocol.STATIC,
            url=server.url("navigli"),
            submission_url=server.url("navigli"),
            mmd=60,
            state=LogState.USABLE,
        )
        self.origin = checkpoint_origin(self.log.submission_url)

    def publish(self, size: int) -> None:
        """Serve the tiles and a signed checkpoint for ``size`` (778 or 1024)."""
        self.site.files.update(navigli_files(size))
        self.site.files["checkpoint"] = self.key.checkpoint(self.origin, size, NAVIGLI_ROOTS[size])

    def tail(self, state: TailState, seen: list[TailItem]) -> TailResult:
        """One ``--once`` pass, collecting what it hands out."""
        return asyncio.run(tail_once(self.log, state, seen.append, policy=FAST))


@pytest.fixture
def navigli() -> Iterator[Navigli]:
    """A running log server playing Navigli2025h2."""
    with CtLogServer() as server:
        yield Navigli(server, TestLogKey())


def test_a_pass_reads_every_entry_in_order_with_its_issuers(navigli: Navigli) -> None:
    """From 0 to the checkpoint's 1024: each entry once, in order, issuers fetched once."""
    navigli.publish(1024)
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert [item.index for item in seen] == list(range(1024))
    assert all(isinstance(item, LogEntry) for item in seen)
    entries = [item for item in seen if isinstance(item, LogEntry)]
    assert all(
        [hashlib.sha256(c).digest() for c in e.chain] == list(e.chain_fingerprints) for e in entries
    )
    issuers = {fp for e in entries for fp in e.chain_fingerprints}
    assert all(navigli.server.count(f"issuer/{fp.hex()}") == 1 for fp in issuers)
    assert result.state.position == 1024 and result.state.last_error == ""
    assert result.state.tree_size == 1024 and result.state.root_hash == NAVIGLI_ROOTS[1024]
    assert result.status.backlog == 0 and result.status.entries_per_second
    assert result.state.last_success is not None and result.handled == 1024


def test_a_growing_log_is_read_without_gap_or_repeat(navigli: Navigli) -> None:
    """778 entries (partial tile fetched), then 1024 (the full tile, not the partial)."""
    navigli.publish(778)
    seen: list[TailItem] = []
    first = navigli.tail(TailState(), seen)
    assert first.state.position == 778
    assert navigli.server.count("tile/data/003.p/10") == 1

    navigli.publish(1024)
    second = navigli.tail(first.state, seen)

    assert [item.index for item in seen] == list(range(1024))
    assert second.state.position == 1024 and second.state.last_error == ""
    assert navigli.server.count("tile/data/003.p/10") == 1
    assert navigli.server.count("tile/data/003") == 2
    assert navigli.server.count("tile/data/000") == 1


def test_a_partial_tile_that_is_gone_is_read_from_the_full_tile(navigli: Navigli) -> None:
    """The checkpoint says 778, the log has dropped the partial tiles: the full ones serve."""
    navigli.publish(778)
    navigli.site.files.update(navigli_files(1024))
    del navigli.site.files["tile/data/003.p/10"], navigli.site.files["tile/0/003.p/10"]
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert [item.index for item in seen] == list(range(778))
    assert result.state.last_error == ""


def test_gzip_429_and_503_do_not_change_what_is_read(navigli: Navigli) -> None:
    """Gzipped answers, 429s with Retry-After and 503s: the same 1024 entries."""
    navigli.publish(1024)
    navigli.server.gzip = True
    navigli.server.inject(Fault("checkpoint", 503, 1))
    navigli.server.inject(Fault("tile/data/002", 429, 2, retry_after="0"))
    navigli.server.inject(Fault("tile/0/001", 503, 1))
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert [item.index for item in seen] == list(range(1024))
    assert result.state.last_error == ""
    assert navigli.server.count("tile/data/002") == 3


def test_a_level_1_tile_the_log_lacks_is_computed_from_level_0(navigli: Navigli) -> None:
    """Without tile/1/000.p/4 the root is recomputed from the four level-0 tiles."""
    navigli.publish(1024)
    del navigli.site.files["tile/1/000.p/4"]
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert result.state.position == 1024 and result.state.last_error == ""


def test_a_wrong_data_tile_is_detected_and_reported(navigli: Navigli) -> None:
    """A changed byte in data tile 1 stops the pass after entry 255, naming the tile."""
    navigli.publish(1024)
    tile = bytearray(navigli.site.files["tile/data/001"])
    tile[600] ^= 0x01
    navigli.site.files["tile/data/001"] = bytes(tile)
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert [item.index for item in seen] == list(range(256))
    assert result.state.position == 256
    assert result.state.last_error.startswith(
        "tile/data/001: entry 256: its leaf hash is not the hash tile's"
    )
    assert result.state.last_success is None and result.status.backlog == 768


def test_a_level_0_tile_that_is_not_in_the_tree_is_detected(navigli: Navigli) -> None:
    """Data tile 2 changed and its level-0 tile made to match: the level above disagrees."""
    navigli.publish(1024)
    files = navigli.site.files
    tile = bytearray(files["tile/data/002"])
    tile[45] ^= 0x01
    files["tile/data/002"] = bytes(tile)
    files["tile/0/002"] = b"".join(parse_data_tile(bytes(tile), data_tile(2)).leaf_hashes())

    result = navigli.tail(TailState(), [])

    assert result.state.position == 512
    assert result.state.last_error.startswith(
        "tile/0/002: its hashes are not the ones tile/1/000.p/4 holds"
    )


def test_a_checkpoint_with_a_bad_signature_is_reported_and_nothing_is_read(
    navigli: Navigli,
) -> None:
    """A checkpoint over a root the log did not sign: a signature error, position kept."""
    navigli.publish(1024)
    signed = navigli.site.files["checkpoint"]
    navigli.site.files["checkpoint"] = signed.replace(b"EMfGG85", b"EMfGG86")
    seen: list[TailItem] = []

    result = navigli.tail(TailState(position=5), seen)

    assert seen == [] and result.state.position == 5
    assert "checkpoint of size 1024" in result.state.last_error


def test_a_checkpoint_root_the_tiles_do_not_give_is_reported(navigli: Navigli) -> None:
    """A validly signed checkpoint whose root is not the tiles' root: a tile error."""
    navigli.publish(1024)
    navigli.site.files["checkpoint"] = navigli.key.checkpoint(
        navigli.origin, 1024, NAVIGLI_ROOTS[778]
    )

    result = navigli.tail(TailState(), [])

    assert result.state.position == 0 and "root recomputed" in result.state.last_error


def test_the_position_moves_only_past_entries_processed(navigli: Navigli) -> None:
    """Stopping while entry 300 is being processed leaves the position at 300."""
    navigli.publish(1024)

    async def run() -> TailState:
        async with LogTail(navigli.log, TailState(position=290), policy=FAST) as tail:
            async for item in tail.entries():
                if item.index == 300:
                    break
            return tail.state

    assert asyncio.run(run()).position == 300


def test_a_malformed_entry_is_handed_out_and_skipped(navigli: Navigli) -> None:
    """A malformed entry (its certificate not DER) is counted and the log goes on.

    The tile is consistent with its hash tile (both from the same changed bytes, as a log
    that logged a broken certificate would serve), so only the entry is bad.
    """
    files = navigli_files(1024)
    tile = bytearray(files["tile/data/000"])
    tile[45] = 0x31  # entry 0 is a precert: its TBS starts after 8 + 2 + 32 + 3 bytes
    parsed = parse_data_tile(bytes(tile), data_tile(0))
    assert [m.index for m in parsed.malformed] == [0]
    hashes = parsed.leaf_hashes()
    files["tile/data/000"] = bytes(tile)
    files["tile/0/000"] = b"".join(hashes)
    level0 = [files[f"tile/0/00{i}"] for i in range(4)]
    tops = [root_from_leaf_hashes([t[j : j + 32] for j in range(0, 8192, 32)]) for t in level0]
    files["tile/1/000.p/4"] = b"".join(tops)
    navigli.site.files.update(files)
    navigli.site.files["checkpoint"] = navigli.key.checkpoint(
        navigli.origin, 1024, root_from_leaf_hashes(tops)
    )
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert isinstance(seen[0], MalformedEntry) and seen[0].index == 0
    assert [item.index for item in seen] == list(range(1024))
    assert result.state.malformed == 1 and result.state.position == 1024
    assert result.state.last_error == ""


def test_a_larger_log_of_real_leaves_is_read_whole(navigli: Navigli) -> None:
    """2,048 entries (Navigli's leaves re-indexed, as the benchmark serves): all, in order."""
    files, root = synthetic_static_log(2048)
    navigli.site.files.update(files)
    navigli.site.files["checkpoint"] = navigli.key.checkpoint(navigli.origin, 2048, root)
    seen: list[TailItem] = []

    result = navigli.tail(TailState(position=100), seen)

    assert [item.index for item in seen] == list(range(100, 2048))
    assert result.state.position == 2048 and result.state.last_error == ""


def test_a_checkpoint_that_never_ends_fails_within_the_deadline(navigli: Navigli) -> None:
    """A checkpoint answer streaming forever ends the pass at the deadline, recorded."""
    navigli.server.stream_forever.add("checkpoint")
    policy = FetchPolicy(deadline=0.5, retries=0, max_bytes=1 << 30)
    started = time.monotonic()

    result = asyncio.run(tail_once(navigli.log, TailState(), lambda item: None, policy=policy))

    assert time.monotonic() - started < 3
    assert result.state.last_error.endswith("no complete answer within 0.5 s, after 1 attempt")


def test_the_log_lists_rate_limit_is_honoured(navigli: Navigli) -> None:
    """A log listed with ``certspotter_qps`` 20 gets no more than 20 requests a second."""
    navigli.publish(1024)
    log = dataclasses.replace(navigli.log, qps=20.0)
    started = time.monotonic()

    result = asyncio.run(tail_once(log, TailState(), lambda item: None, policy=FAST))

    requests = len(navigli.server.requests)
    assert result.state.position == 1024 and requests >= 10
    assert time.monotonic() - started >= (requests - 1) / 20 - 0.02


def test_hash_tiles_kept_stay_bounded_over_a_long_read(navigli: Navigli) -> None:
    """Reading 16,384 entries keeps at most the root's tiles and 16 others in memory."""
    files, root = synthetic_static_log(16_384)
    navigli.site.files.update(files)
    navigli.site.files["checkpoint"] = navigli.key.checkpoint(navigli.origin, 16_384, root)

    async def run() -> tuple[int, int]:
        async with LogTail(navigli.log, TailState(), policy=FAST) as tail:
            count = sum([1 async for _ in tail.entries()])
            assert isinstance(tail.reader, StaticReader)
            return count, tail.reader.hash_tiles_kept

    count, kept = asyncio.run(run())

    assert count == 16_384 and kept <= 16 + 2


def test_a_shared_issuer_cache_fetches_each_issuer_once_across_passes(navigli: Navigli) -> None:
    """Two passes (778, then 1,024 entries) with one IssuerCache: each issuer fetched once."""
    cache = IssuerCache()
    navigli.publish(778)
    seen: list[TailItem] = []
    first = asyncio.run(tail_once(navigli.log, TailState(), seen.append, issuers=cache))
    navigli.publish(1024)
    second = asyncio.run(tail_once(navigli.log, first.state, seen.append, issuers=cache))

    assert second.state.position == 1024 and len(seen) == 1024
    fingerprints = {fp for e in seen if isinstance(e, LogEntry) for fp in e.chain_fingerprints}
    assert fingerprints and set(cache.certificates) == fingerprints
    assert all(navigli.server.count(f"issuer/{fp.hex()}") == 1 for fp in fingerprints)
    assert all(hashlib.sha256(cache.certificates[fp]).digest() == fp for fp in fingerprints)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("checkpoint", "checkpoint: not UTF-8 text"),
        ("tile/1/000.p/4", "tile/1/000.p/4: 100 bytes, expected 128"),
        ("tile/0/000", "tile/0/000: 100 bytes, expected 8192"),
        ("tile/data/000", "tile/data/000: entry 0 (position 0)"),
        (
            "issuer/e70570a989f8565aabdf7cae27abd1621872d6a3f811e3fef27e3dba02912198",
            "issuer/e70570a989f8565aabdf7cae27abd1621872d6a3f811e3fef27e3dba02912198: "
            "the certificate served has another SHA-256",
        ),
    ],
)
def test_garbage_in_place_of_any_file_is_reported_by_name(
    navigli: Navigli, path: str, expected: str
) -> None:
    """100 bytes of garbage served for one file: the pass ends with an error naming it."""
    navigli.publish(1024)
    navigli.site.files[path] = b"\xff" * 100
    seen: list[TailItem] = []

    result = navigli.tail(TailState(), seen)

    assert result.state.last_error.startswith(expected)
    assert result.state.position == len(seen) and len(seen) % 256 == 0


# Consistency between successive checkpoints, and a tail that does not start at 0.


def _serve_synthetic(navigli: Navigli, size: int, shift: int = 0) -> None:
    files, root = synthetic_static_log(size, shift)
    navigli.site.files = files
    navigli.site.files["checkpoint"] = navigli.key.checkpoint(navigli.origin, size, root)


def test_a_grown_tree_that_starts_with_the_old_one_is_read_on(navigli: Navigli) -> None:
    """512 entries, then 1,024 with the same first 512: consistent, read on without error."""
    _serve_synthetic(navigli, 512)
    first = navigli.tail(TailState(), [])
    assert first.state.position == 512 and first.state.last_error == ""
    _serve_synthetic(navigli, 1024)
    seen: list[TailItem] = []

    second = navigli.tail(first.state, seen)

    assert [item.index for item in seen] == list(range(512, 1024))
    assert second.state.last_error == "" and second.state.tree_size == 1024


def test_a_forked_tree_is_a_log_fault_and_nothing_is_read(navigli: Navigli) -> None:
    """512 entries, then 1,024 whose history differs (a fork): reported, position kept."""
    _serve_synthetic(navigli, 512)
    first = navigli.tail(TailState(), [])
    _serve_synthetic(navigli, 1024, shift=1)  # validly signed, tiles agree with it
    seen: list[TailItem] = []

    second = navigli.tail(first.state, seen)

    assert seen == [] and second.state.position == 512
    assert "does not start with the tree of 512 verified before" in second.state.last_error
    assert second.state.last_error_kind == "TileError"
    assert second.state.tree_size == 512  # the contradicting head is not adopted


def test_a_tail_started_past_0_takes_its_compact_range_from_the_tiles(navigli: Navigli) -> None:
    """Started at 500 (no leaves before it read), the entries read are still checked
    against the tree head: the compact range of 0..499 comes from the hash tiles."""
    navigli.publish(1024)
    seen: list[TailItem] = []

    result = navigli.tail(TailState(position=500), seen)

    assert [item.index for item in seen] == list(range(500, 1024))
    assert result.state.last_error == ""
    assert result.state.frontier is not None
    assert fold_subtrees(result.state.frontier) == NAVIGLI_ROOTS[1024]
