"""Reading a static-ct-api log: the checkpoint verified, tiles checked against it.

For each verified checkpoint the root is recomputed from the log's hash tiles; every data
tile read is checked against its level-0 hash tile, and that hash tile is bound to the
same tree (its hash is the one the level above holds, up to a tile the root was
recomputed from). So every entry handed on is in the tree the log signed, and a log that
serves wrong data is reported with the tile concerned. A partial tile is fetched only
when the checkpoint's size ends inside it; when it is gone (the log has grown), the full
tile is read and cut to the width the checkpoint needs. Issuers are fetched once, checked
against their fingerprint, and kept for the life of the reader.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import TileError
from certvigil.ct.fetch.http import LogFetcher
from certvigil.ct.merkle import fold_subtrees, root_from_leaf_hashes
from certvigil.ct.rfc6962 import MalformedEntry
from certvigil.ct.static_ct import (
    TILE_WIDTH,
    DataTile,
    TilePath,
    VerifiedCheckpoint,
    check_issuer,
    check_leaf_hashes,
    checkpoint_origin,
    data_tile,
    issuer_path,
    parse_checkpoint,
    parse_data_tile,
    parse_hash_tile,
    prefix_roots_from_tiles,
    tiles_for_entries,
    verify_checkpoint,
    verify_root_from_tiles,
)

MAX_ISSUERS_CACHED = 10_000
# Hash tiles kept besides those the root was recomputed from: enough for the level-1
# tiles that consecutive data tiles share, while a long backfill stays flat in memory.
MAX_HASH_TILES_KEPT = 16


@dataclass(frozen=True, slots=True)
class TileEntries:
    """The entries of one data tile within the range asked for, checked against the tree.

    Attributes:
        tile: The data tile read.
        entries: Parsed entries, ``chain`` filled with the issuers their fingerprints name.
        malformed: Entries that could not be parsed (recorded and skipped).
    """

    tile: TilePath
    entries: tuple[LogEntry, ...]
    malformed: tuple[MalformedEntry, ...]


class IssuerCache:
    """Issuer certificates by SHA-256 fingerprint, each checked against it when fetched.

    Shared between readers (passes, logs: many logs serve the same CAs), so each issuer
    is fetched once. Bounded: past ``MAX_ISSUERS_CACHED`` new issuers are used uncached.
    """

    def __init__(self) -> None:
        self.certificates: dict[bytes, bytes] = {}
        self._unsaved: list[bytes] = []

    def add(self, fingerprint: bytes, der: bytes) -> None:
        """Keep a checked issuer certificate, while there is room."""
        if fingerprint not in self.certificates and len(self.certificates) < MAX_ISSUERS_CACHED:
            self.certificates[fingerprint] = der
            self._unsaved.append(fingerprint)

    def preload(self, stored: dict[bytes, bytes]) -> None:
        """Take issuers kept from earlier runs (each checked against its fingerprint)."""
        for fingerprint, der in stored.items():
            if len(self.certificates) >= MAX_ISSUERS_CACHED:
                break
            if hashlib.sha256(der).digest() == fingerprint:
                self.certificates[fingerprint] = der

    def take_unsaved(self) -> dict[bytes, bytes]:
        """The issuers added since the last call, to keep (and forget they were new)."""
        taken = {fp: self.certificates[fp] for fp in self._unsaved}
        self._unsaved = []
        return taken


class _Missing(Exception):
    def __init__(self, path: TilePath) -> None:
        self.path = path


class _TreeTiles:
    """The hash tiles of one checkpoint's tree, fetched on demand and kept."""

    def __init__(self, fetcher: LogFetcher, checkpoint: VerifiedCheckpoint) -> None:
        self.fetcher = fetcher
        self.size = checkpoint.checkpoint.tree_size
        self.root = checkpoint.checkpoint.root_hash
        self.hashes: dict[TilePath, Sequence[bytes]] = {}
        self.root_read: set[TilePath] = set()

    def lookup(self, path: TilePath) -> Sequence[bytes]:
        if path not in self.hashes:
            raise _Missing(path)
        self.root_read.add(path)
        return self.hashes[path]

    async def verify_root(self) -> None:
        while True:
            try:
                verify_root_from_tiles(self.size, self.root, self.lookup)
                return
            except _Missing as missing:
                await self.get(missing.path)

    async def get(self, path: TilePath) -> Sequence[bytes]:
        if path in self.hashes:
            return self.hashes[path]
        data = await self.fetcher.get_optional(path.path)
        if data is None and path.width < TILE_WIDTH:
            # The partial tile is gone once the tile is full: its first hashes are ours.
            data = await self.fetcher.get_optional(TilePath(path.level, path.index).path)
            data = data[: 32 * path.width] if data is not None else None
        if data is not None:
            hashes: Sequence[bytes] = parse_hash_tile(data, path)
        elif path.level > 0:
            hashes = await self._from_below(path)
        else:
            raise TileError(path.path, "the log does not serve this level-0 hash tile")
        self.hashes[path] = hashes
        self._evict()
        return hashes

    def _evict(self) -> None:
        # Level-0 tiles first (each serves one data tile), then the oldest higher ones
        # (one level-1 tile serves 256 data tiles in a row).
        spare = sorted((p for p in self.hashes if p not in self.root_read), key=lambda p: p.level)
        for old in spare[: max(0, len(spare) - MAX_HASH_TILES_KEPT)]:
            del self.hashes[old]

    async def _from_below(self, path: TilePath) -> list[bytes]:
        below_nodes = self.size >> (8 * (path.level - 1))
        first = path.index * TILE_WIDTH
        children = [
            TilePath(path.level - 1, i, min(TILE_WIDTH, below_nodes - i * TILE_WIDTH))
            for i in range(first, first + path.width)
        ]
        return [root_from_leaf_hashes(await self.get(child)) for child in children]

    async def prefix_roots(self, prefix_size: int) -> list[bytes]:
        """The compact range of the first ``prefix_size`` leaves, from this tree's tiles.

        Every tile read for it is bound to the recomputed root first, so the hashes are
        the checkpoint's tree's and no other.
        """
        used: set[TilePath] = set()

        def lookup(path: TilePath) -> Sequence[bytes]:
            if path not in self.hashes:
                raise _Missing(path)
            used.add(path)
            return self.hashes[path]

        while True:
            try:
                roots = prefix_roots_from_tiles(prefix_size, self.size, lookup)
                break
            except _Missing as missing:
                await self.get(missing.path)
        for path in sorted(used, key=lambda p: (p.level, p.index)):
            await self.bind(path)
        return roots

    async def bind(self, path: TilePath) -> None:
        """Raise unless this hash tile is part of the tree whose root was recomputed."""
        while path not in self.root_read:
            if path.width < TILE_WIDTH:
                raise TileError(path.path, "this partial hash tile is not the tree's right edge")
            nodes = self.size >> (8 * (path.level + 1))
            parent_index = path.index // TILE_WIDTH
            parent = TilePath(
                path.level + 1, parent_index, min(TILE_WIDTH, nodes - parent_index * TILE_WIDTH)
            )
            expected = (await self.get(parent))[path.index % TILE_WIDTH]
            if root_from_leaf_hashes(await self.get(path)) != expected:
                raise TileError(
                    path.path,
                    f"its hashes are not the ones {parent.path} holds "
                    "(the log serves a tile that is not in its tree)",
                )
            path = parent


class StaticReader:
    """The monitoring API of one static-ct-api log.

    Args:
        fetcher: The log's polite HTTP client (its base URL is the ``monitoring_url``).
        key: The log's key (DER SubjectPublicKeyInfo) from the log list.
        origin: The checkpoint origin required (``checkpoint_origin(submission_url)``),
            or ``None`` to accept the checkpoint's own.
        parallel: Data tiles fetched at once.
        issuers: The issuer cache to use (share one between passes and logs).
    """

    def __init__(
        self,
        fetcher: LogFetcher,
        key: bytes,
        *,
        origin: str | None,
        parallel: int = 2,
        issuers: IssuerCache | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.key = key
        self.origin = origin
        self.parallel = max(1, parallel)
        self.issuers = issuers if issuers is not None else IssuerCache()
        self._pending: dict[bytes, asyncio.Future[bytes]] = {}
        self._tree: _TreeTiles | None = None

    @classmethod
    def origin_for(cls, submission_url: str) -> str | None:
        """The origin a log's checkpoints must carry, when its submission URL is known."""
        return checkpoint_origin(submission_url) if submission_url else None

    async def checkpoint(self) -> VerifiedCheckpoint:
        """The log's checkpoint, its RFC6962NoteSignature verified.

        Raises:
            FetchError: The request failed.
            CheckpointError: The note cannot be parsed.
            SignatureError: Wrong origin, or no valid signature by the log's key.
        """
        return verify_checkpoint(
            parse_checkpoint(await self.fetcher.get("checkpoint")), self.key, origin=self.origin
        )

    async def verify_tree(self, checkpoint: VerifiedCheckpoint) -> None:
        """Recompute the checkpoint's root from the log's hash tiles.

        Raises:
            TileError: The tiles give another root, or one cannot be had.
        """
        tree = _TreeTiles(self.fetcher, checkpoint)
        await tree.verify_root()
        self._tree = tree

    async def _tree_of(self, checkpoint: VerifiedCheckpoint) -> _TreeTiles:
        if self._tree is None or self._tree.size != checkpoint.checkpoint.tree_size:
            await self.verify_tree(checkpoint)
        assert self._tree is not None
        return self._tree

    async def verify_consistency(
        self, checkpoint: VerifiedCheckpoint, old_size: int, old_root: bytes
    ) -> None:
        """Raise unless the checkpoint's tree starts with the tree verified before.

        The root of the first ``old_size`` leaves is recomputed from the new tree's hash
        tiles (after the new root is): a log that rewrote or forked its history cannot
        give the old root from them.

        Raises:
            TileError: The new tree does not contain the old one, or a tile is not in it.
            FetchError: A request failed.
        """
        if old_size == 0 or old_size > checkpoint.checkpoint.tree_size:
            return
        tree = await self._tree_of(checkpoint)
        if fold_subtrees(await tree.prefix_roots(old_size)) != old_root:
            raise TileError(
                "tree",
                f"the tree of {checkpoint.checkpoint.tree_size} entries does not start with "
                f"the tree of {old_size} verified before (the log rewrote or forked its history)",
            )

    async def compact_range(self, checkpoint: VerifiedCheckpoint, size: int) -> tuple[bytes, ...]:
        """The roots of the perfect subtrees of the first ``size`` leaves (from the tiles).

        Raises:
            TileError: A tile cannot be had or is not in the tree.
            FetchError: A request failed.
        """
        tree = await self._tree_of(checkpoint)
        return tuple(await tree.prefix_roots(size))

    async def entries(
        self, start: int, end: int, checkpoint: VerifiedCheckpoint
    ) -> AsyncIterator[TileEntries]:
        """The entries ``start`` to ``end`` (exclusive) of the checkpoint's tree, tile by
        tile, in order; each tile checked against the tree before it is handed on.

        Raises:
            TileError: A tile cannot be parsed or is not in the tree.
            FetchError: A request failed.
        """
        tree = await self._tree_of(checkpoint)
        tiles = tiles_for_entries(start, end, checkpoint.checkpoint.tree_size)
        pending: list[asyncio.Task[TileEntries]] = []
        try:
            for tile in tiles:
                pending.append(asyncio.create_task(self._tile(tree, tile, start, end)))
                if len(pending) >= self.parallel:
                    yield await pending.pop(0)
            while pending:
                yield await pending.pop(0)
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _tile(self, tree: _TreeTiles, tile: TilePath, start: int, end: int) -> TileEntries:
        parsed = await self._data_tile(tile)
        level0 = TilePath(0, tile.index, tile.width)
        check_leaf_hashes(parsed, await tree.get(level0))
        await tree.bind(level0)
        wanted = [e for e in parsed.entries if start <= e.index < end]
        issuers = await self._resolve({fp for e in wanted for fp in e.chain_fingerprints})
        entries = tuple(
            e._replace(chain=tuple(issuers[fp] for fp in e.chain_fingerprints)) for e in wanted
        )
        malformed = tuple(m for m in parsed.malformed if start <= m.index < end)
        return TileEntries(tile, entries, malformed)

    async def _data_tile(self, tile: TilePath) -> DataTile:
        data = await self.fetcher.get_optional(tile.path)
        if data is not None:
            return parse_data_tile(data, tile)
        if tile.width < TILE_WIDTH:
            full = await self.fetcher.get_optional(data_tile(tile.index).path)
            if full is not None:
                parsed = parse_data_tile(full, data_tile(tile.index))
                last = tile.index * TILE_WIDTH + tile.width
                return DataTile(
                    tile,
                    tuple(e for e in parsed.entries if e.index < last),
                    tuple(m for m in parsed.malformed if m.index < last),
                )
        raise TileError(tile.path, "the log does not serve this data tile")

    async def _resolve(self, fingerprints: set[bytes]) -> dict[bytes, bytes]:
        # One fetch per fingerprint, shared by tiles read in parallel; a checked issuer
        # goes to the cache, a failed fetch is forgotten so that a later tile asks again.
        known = self.issuers.certificates
        found = {fp: known[fp] for fp in fingerprints if fp in known}
        waiting: dict[bytes, asyncio.Future[bytes]] = {}
        for fp in fingerprints - found.keys():
            task = self._pending.get(fp)
            if task is None:
                task = self._pending[fp] = asyncio.ensure_future(self._issuer(fp))
            waiting[fp] = task
        try:
            for fp, task in waiting.items():
                found[fp] = await task
                self.issuers.add(fp, found[fp])
        finally:
            for fp, task in waiting.items():
                if task.done() and self._pending.get(fp) is task:
                    del self._pending[fp]
        return found

    async def _issuer(self, fingerprint: bytes) -> bytes:
        der = await self.fetcher.get(issuer_path(fingerprint))
        check_issuer(fingerprint, der)
        return der

    @property
    def hash_tiles_kept(self) -> int:
        """How many hash tiles of the current tree are held in memory."""
        return len(self._tree.hashes) if self._tree is not None else 0

    @property
    def issuers_cached(self) -> int:
        """How many issuer certificates the cache holds (fetched and checked)."""
        return len(self.issuers.certificates)
