"""Tailing one log: from a position up to its current verified tree head, in order.

``LogTail`` takes a log and a ``TailState`` (a frozen value: where to start, the last
verified tree head) and hands out the log's entries in index order, each with its index.
The position moves past an entry only when the consumer asks for the next one, that is
once the entry is fully processed, so a state saved at any point resumes without a gap
and repeats at most the entry being processed. A malformed entry is handed out as a
``MalformedEntry`` (counted in the state) and skipped; it never stops the log. A log
fault (a failed request, a bad signature, a tile that is not in the tree, a tree head
smaller than the one verified before) ends the pass: it is recorded in the state as the
last error, with the position at the last entry processed, and nothing is raised.

``tail_once`` is ``certvigil ct watch --once`` for one log: read up to the current head
and stop. Persistence of the state is the caller's (the store, later).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import CtError
from certvigil.ct.fetch.http import FetchPolicy, LogFetcher
from certvigil.ct.fetch.rfc6962 import DEFAULT_BATCH, Rfc6962Reader
from certvigil.ct.fetch.static import IssuerCache, StaticReader
from certvigil.ct.log_list import CtLog, LogProtocol
from certvigil.ct.merkle import fold_subtrees, node_hash, verify_consistency
from certvigil.ct.rfc6962 import MalformedEntry
from certvigil.ct.static_ct import VerifiedCheckpoint

TailItem = LogEntry | MalformedEntry
_MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class TailState:
    """Where a log's tail stands (persisted by the caller between runs).

    Attributes:
        position: The index of the next entry to hand out (all before it are processed).
        tree_size: The size of the last verified tree head (``None``: never read).
        root_hash: Its root hash.
        head_timestamp: Its timestamp (milliseconds since the epoch).
        last_success: When a pass last reached the tree head it read.
        last_error: The last log fault, in words (``""`` after a clean pass).
        last_error_kind: The class of that fault (``FetchError`` when the log could
            not be reached; ``SignatureError``, ``TileError``, ``CheckpointError``… when
            it served something its tree or key contradicts), ``""`` after a clean pass.
        malformed: How many malformed entries were skipped so far.
        frontier: The roots of the perfect subtrees of entries ``0`` to ``position - 1``
            (their compact range), when known: kept from entry 0 on, it lets the root of
            the entries read be compared with each tree head reached. ``None``: unknown
            (a tail started past 0, or an entry whose leaf could not be hashed).
    """

    position: int = 0
    tree_size: int | None = None
    root_hash: bytes = b""
    head_timestamp: int = 0
    last_success: datetime | None = None
    last_error: str = ""
    malformed: int = 0
    last_error_kind: str = ""
    frontier: tuple[bytes, ...] | None = None


@dataclass(frozen=True, slots=True)
class LogStatus:
    """How complete the watch of one log is, right now.

    Attributes:
        log: The log's description.
        tree_size: Size of the last verified tree head (``None``: never read).
        position: Entries processed (the next index to read).
        backlog: Entries in the verified tree not yet processed (``None``: unknown).
        entries_per_second: Rate of the last pass (``None`` before one read entries).
        last_success: When a pass last reached the tree head.
        last_error: The last log fault, or ``""``.
        malformed: Malformed entries skipped so far.
    """

    log: str
    tree_size: int | None
    position: int
    backlog: int | None
    entries_per_second: float | None
    last_success: datetime | None
    last_error: str
    malformed: int


class LogTail:
    """Reads one log from ``state.position`` up to its current verified tree head.

    Args:
        log: The log (from the log list or configured directly).
        state: Where to start.
        policy: Rate, parallelism, deadlines and back-off (the log's ``certspotter_qps``
            lowers the rate further when given).
        stop_at: Never read at or past this index (a read-only log's final tree size).
        client: An ``httpx.AsyncClient`` to share between logs.
        batch_size: RFC 6962 entries per request (default: the log's
            ``certspotter_download_size``, else 1000).
        parallel: Batches or tiles fetched ahead (default: the log's
            ``certspotter_download_jobs``, else 2).
        issuers: A static log's issuer cache, to share between passes and logs.
        lazy_extra: Hand out RFC 6962 entries with ``extra_data`` undecoded
            (``rfc6962.complete_entry`` decodes it), for a consumer that needs the chain
            of few entries.
    """

    def __init__(
        self,
        log: CtLog,
        state: TailState,
        *,
        policy: FetchPolicy | None = None,
        stop_at: int | None = None,
        client: httpx.AsyncClient | None = None,
        batch_size: int | None = None,
        parallel: int | None = None,
        issuers: IssuerCache | None = None,
        lazy_extra: bool = False,
    ) -> None:
        policy = policy or FetchPolicy()
        if log.qps is not None and log.qps > 0 and (policy.qps is None or log.qps < policy.qps):
            policy = dataclasses.replace(policy, qps=log.qps)
        self.log = log
        self.stop_at = stop_at
        self.fetcher = LogFetcher(log.url, policy, client=client)
        jobs = parallel or log.download_jobs or 2
        self._reader: Rfc6962Reader | StaticReader
        if log.protocol is LogProtocol.STATIC:
            origin = StaticReader.origin_for(log.submission_url)
            self._reader = StaticReader(
                self.fetcher, log.key, origin=origin, parallel=jobs, issuers=issuers
            )
        else:
            size = batch_size or log.download_size or DEFAULT_BATCH
            self._reader = Rfc6962Reader(
                self.fetcher, log.key, batch_size=size, parallel=jobs, lazy_extra=lazy_extra
            )
        self._state = state
        self._rate: float | None = None
        self._checkpoint: VerifiedCheckpoint | None = None

    async def __aenter__(self) -> LogTail:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this tail made it."""
        await self.fetcher.aclose()

    @property
    def reader(self) -> Rfc6962Reader | StaticReader:
        """The protocol reader this tail uses."""
        return self._reader

    @property
    def state(self) -> TailState:
        """The state now: what to persist, and where the next pass starts."""
        return self._state

    def status(self) -> LogStatus:
        """The log's status values (tree size, position, backlog, rate, last success/error)."""
        state = self._state
        end = state.tree_size
        if end is not None and self.stop_at is not None:
            end = min(end, self.stop_at)
        return LogStatus(
            log=self.log.description,
            tree_size=state.tree_size,
            position=state.position,
            backlog=None if end is None else max(0, end - state.position),
            entries_per_second=self._rate,
            last_success=state.last_success,
            last_error=state.last_error,
            malformed=state.malformed,
        )

    async def entries(self) -> AsyncIterator[TailItem]:
        """Every entry from the position up to the current verified tree head, in order.

        A log fault ends the iteration and is recorded in ``state.last_error``.
        """
        started = time.monotonic()
        handed = 0
        try:
            end = await self._head()
            async for item in self._read(self._state.position, end):
                yield item
                # Reached only when the consumer asks for the next entry: this one is done.
                handed += 1
                self._advance(item)
            self._check_root()
            self._state = dataclasses.replace(
                self._state, last_success=datetime.now(UTC), last_error="", last_error_kind=""
            )
        except CtError as exc:
            self._state = dataclasses.replace(
                self._state, last_error=_words(exc), last_error_kind=_kind(exc)
            )
        finally:
            elapsed = time.monotonic() - started
            if handed:
                self._rate = handed / elapsed if elapsed > 0 else None

    def _advance(self, item: TailItem) -> None:
        state = self._state
        malformed = state.malformed + isinstance(item, MalformedEntry)
        frontier = state.frontier if state.frontier is not None or state.position else ()
        if frontier is not None and item.leaf_hash is not None:
            frontier = _extend(frontier, state.position, item.leaf_hash)
        else:
            frontier = None
        self._state = dataclasses.replace(
            state, position=item.index + 1, malformed=malformed, frontier=frontier
        )

    def _check_root(self) -> None:
        """At the tree head's size, the entries read must give the tree head's root."""
        state = self._state
        if state.frontier is None or state.position != state.tree_size or not state.position:
            return
        if fold_subtrees(state.frontier) != state.root_hash:
            raise _LogFault(
                f"entries 0 to {state.position - 1} give another root than the verified tree "
                "head's: the log serves entries that are not in its tree"
            )

    async def _head(self) -> int:
        """Fetch and verify the tree head; return where this pass stops."""
        if isinstance(self._reader, StaticReader):
            checkpoint = await self._reader.checkpoint()
            size = checkpoint.checkpoint.tree_size
            root, stamp = checkpoint.checkpoint.root_hash, checkpoint.timestamp
            self._checkpoint = checkpoint
        else:
            sth = await self._reader.tree_head()
            size, root, stamp = sth.tree_size, sth.root_hash, sth.timestamp
        known = self._state.tree_size
        if known is not None and size < known:
            raise _LogFault(
                f"the log's verified tree head has {size} entries, fewer than the "
                f"{known} verified before"
            )
        if known == size and self._state.root_hash and root != self._state.root_hash:
            raise _LogFault(f"the log signed two different roots for size {size}")
        if known and size > known and self._state.root_hash:
            await self._check_consistency(known, self._state.root_hash, size, root)
        frontier = self._state.frontier
        position = self._state.position
        if (
            frontier is None
            and self._checkpoint is not None
            and isinstance(self._reader, StaticReader)
            and 0 < position <= size
        ):
            # A tail that did not start at 0: the compact range of what lies before it,
            # from the hash tiles, so the leaves read from here on are checked too.
            frontier = await self._reader.compact_range(self._checkpoint, position)
        self._state = dataclasses.replace(
            self._state, tree_size=size, root_hash=root, head_timestamp=stamp, frontier=frontier
        )
        return size if self.stop_at is None else min(size, self.stop_at)

    async def _check_consistency(
        self, old_size: int, old_root: bytes, size: int, root: bytes
    ) -> None:
        """The new tree head must extend the one verified before (RFC 9162 §2.1.4)."""
        if isinstance(self._reader, StaticReader):
            assert self._checkpoint is not None
            await self._reader.verify_consistency(self._checkpoint, old_size, old_root)
            return
        proof = await self._reader.consistency(old_size, size)
        if not verify_consistency(old_size, size, proof, old_root, root):
            raise _LogFault(
                f"the log's consistency proof from {old_size} to {size} entries does not "
                "verify: its new tree head does not extend the one verified before"
            )

    async def _read(self, start: int, end: int) -> AsyncIterator[TailItem]:
        if start >= end:
            return
        if isinstance(self._reader, StaticReader):
            assert self._checkpoint is not None
            async for tile in self._reader.entries(start, end, self._checkpoint):
                for item in _in_order(tile.entries, tile.malformed):
                    yield item
        else:
            async for batch in self._reader.entries(start, end):
                for item in _in_order(batch.entries, batch.malformed):
                    yield item


class _LogFault(CtError):
    """A log whose tree heads contradict each other."""


def _extend(frontier: tuple[bytes, ...], size: int, leaf: bytes) -> tuple[bytes, ...]:
    """The compact range of ``size + 1`` leaves from that of ``size`` and the new leaf."""
    stack = list(frontier)
    value = leaf
    while size & 1:
        value = node_hash(stack.pop(), value)
        size >>= 1
    stack.append(value)
    return tuple(stack)


def _in_order(
    entries: tuple[LogEntry, ...], malformed: tuple[MalformedEntry, ...]
) -> list[TailItem]:
    if not malformed:
        return list(entries)
    items: list[TailItem] = [*entries, *malformed]
    items.sort(key=lambda item: item.index)
    return items


def _kind(exc: CtError) -> str:
    # _LogFault is this module's own: a log whose tree heads contradict each other.
    return "LogFault" if isinstance(exc, _LogFault) else type(exc).__name__


def _words(exc: CtError) -> str:
    text = str(exc)[:_MAX_ERROR_CHARS]
    return "".join(c if c.isprintable() else "\ufffd" for c in text)


@dataclass(frozen=True, slots=True)
class TailResult:
    """What one ``tail_once`` pass did: the state to persist and the log's status."""

    state: TailState
    status: LogStatus
    handled: int


async def tail_once(
    log: CtLog,
    state: TailState,
    handle: Callable[[TailItem], Awaitable[None] | None],
    *,
    policy: FetchPolicy | None = None,
    stop_at: int | None = None,
    client: httpx.AsyncClient | None = None,
    batch_size: int | None = None,
    parallel: int | None = None,
    issuers: IssuerCache | None = None,
) -> TailResult:
    """Read ``log`` from ``state.position`` up to its current verified tree head, then stop.

    Args:
        log: The log.
        state: Where to start.
        handle: Called with each entry (or malformed entry) in order; may be async. The
            position moves past an entry once ``handle`` has returned.
        policy, stop_at, client, batch_size, parallel, issuers: As for ``LogTail``.

    Returns:
        The state to persist, the log's status, and how many entries were handled.
    """
    handled = 0
    tail = LogTail(
        log,
        state,
        policy=policy,
        stop_at=stop_at,
        client=client,
        batch_size=batch_size,
        parallel=parallel,
        issuers=issuers,
    )
    async with tail:
        async for item in tail.entries():
            result = handle(item)
            if result is not None:
                await result
            handled += 1
        return TailResult(tail.state, tail.status(), handled)
