"""The server judges and stores report batches on one thread, in the order they arrive."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from certvigil.server.ingest import IngestThread


def test_batches_run_one_at_a_time_on_one_thread_in_arrival_order() -> None:
    lane = IngestThread()
    ran: list[tuple[int, str]] = []
    running = [0]
    overlapped = [False]

    def batch(number: int, pause_s: float) -> int:
        running[0] += 1
        overlapped[0] |= running[0] > 1
        time.sleep(pause_s)
        ran.append((number, threading.current_thread().name))
        running[0] -= 1
        return number * 10

    async def main() -> list[int]:
        # The first batch is the slowest: a pool of threads would finish the others first.
        return await asyncio.gather(*(lane.run(batch, n, 0.05 if n == 0 else 0) for n in range(8)))

    try:
        assert asyncio.run(main()) == [n * 10 for n in range(8)]
    finally:
        lane.close()
    assert [number for number, _ in ran] == list(range(8))
    assert len({name for _, name in ran}) == 1
    assert ran[0][1] != threading.current_thread().name
    assert not overlapped[0]


def test_a_batch_that_fails_raises_in_its_request_and_the_next_still_runs() -> None:
    lane = IngestThread()

    def fail() -> None:
        raise ValueError("bad batch")

    async def main() -> str:
        with pytest.raises(ValueError, match="bad batch"):
            await lane.run(fail)
        return await lane.run(str.upper, "next")

    try:
        assert asyncio.run(main()) == "NEXT"
    finally:
        lane.close()


def test_close_waits_for_the_batches_taken_and_a_later_batch_starts_a_new_thread() -> None:
    lane = IngestThread()
    done: list[int] = []

    def slow(number: int) -> None:
        time.sleep(0.05)
        done.append(number)

    async def submit() -> list[asyncio.Future[None]]:
        return [asyncio.ensure_future(lane.run(slow, n)) for n in range(3)]

    async def main() -> None:
        futures = await submit()
        await asyncio.sleep(0)  # handed to the thread
        await asyncio.to_thread(lane.close)
        assert done == [0, 1, 2]
        await asyncio.gather(*futures)
        assert await lane.run(len, "again") == 5

    try:
        asyncio.run(main())
    finally:
        lane.close()
