"""Reading an RFC 6962 log: ``get-sth`` verified with the log's key, ``get-entries`` in
bounded parallel batches, each looped until its range is covered (a log may answer with
fewer entries than asked)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from certvigil.ct.errors import ResponseError
from certvigil.ct.fetch.http import LogFetcher
from certvigil.ct.rfc6962 import (
    EntriesBatch,
    SignedTreeHead,
    parse_consistency,
    parse_get_entries,
    parse_sth,
    verify_sth,
)

DEFAULT_BATCH = 1000


class Rfc6962Reader:
    """The read API of one RFC 6962 log.

    Args:
        fetcher: The log's polite HTTP client (its base URL is the log's ``url``).
        key: The log's key (DER SubjectPublicKeyInfo) from the log list.
        batch_size: Entries asked for per ``get-entries`` request.
        parallel: Batches fetched at once (the fetcher's parallelism bounds requests too).
        lazy_extra: Keep each entry's ``extra_data`` undecoded (``rfc6962.complete_entry``
            decodes it when needed).
    """

    def __init__(
        self,
        fetcher: LogFetcher,
        key: bytes,
        *,
        batch_size: int = DEFAULT_BATCH,
        parallel: int = 2,
        lazy_extra: bool = False,
    ) -> None:
        self.lazy_extra = lazy_extra
        self.fetcher = fetcher
        self.key = key
        self.batch_size = max(1, batch_size)
        self.parallel = max(1, parallel)

    async def tree_head(self) -> SignedTreeHead:
        """The log's current tree head, its signature verified.

        Raises:
            FetchError: The request failed.
            ResponseError: The answer is not a tree head.
            SignatureError: The signature does not verify with the log's key.
        """
        body = await self.fetcher.get("ct/v1/get-sth")
        sth = parse_sth(body)
        verify_sth(sth, self.key)
        return sth

    async def consistency(self, first: int, second: int) -> tuple[bytes, ...]:
        """The log's proof that its tree of ``first`` leaves is a prefix of ``second``'s.

        Raises:
            FetchError: The request failed.
            ResponseError: The answer is not a consistency proof.
        """
        body = await self.fetcher.get(f"ct/v1/get-sth-consistency?first={first}&second={second}")
        return parse_consistency(body)

    async def entries(self, start: int, end: int) -> AsyncIterator[EntriesBatch]:
        """The entries ``start`` to ``end`` (exclusive), in order, as parsed batches.

        Up to ``parallel`` batches are fetched ahead; closing the iterator cancels them.

        Raises:
            FetchError, ResponseError: A request failed or an answer is not the API's shape.
        """
        ranges = (
            (first, min(first + self.batch_size, end))
            for first in range(start, end, self.batch_size)
        )
        pending: list[asyncio.Task[list[EntriesBatch]]] = []
        try:
            for first, last in ranges:
                pending.append(asyncio.create_task(self._range(first, last)))
                if len(pending) >= self.parallel:
                    for batch in await pending.pop(0):
                        yield batch
            while pending:
                for batch in await pending.pop(0):
                    yield batch
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _range(self, start: int, end: int) -> list[EntriesBatch]:
        batches: list[EntriesBatch] = []
        while start < end:
            body = await self.fetcher.get(f"ct/v1/get-entries?start={start}&end={end - 1}")
            batch = parse_get_entries(body, start, end - 1, lazy_extra=self.lazy_extra)
            if batch.count == 0:
                raise ResponseError(
                    "get-entries", f"no entries for {start} to {end - 1} (the tree head has them)"
                )
            batches.append(batch)
            start += batch.count
        return batches
