"""Socket reads give the event loop a turn even when the kernel already holds data."""

from __future__ import annotations

import asyncio
import socket

from certvigil.probe.sockio import receive


def test_receive_yields_while_data_is_ready() -> None:
    """While data is always ready, another task runs and a time-out ends the reads early."""

    async def run() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.setblocking(False)
        ticks = 0
        total = 0
        with ours, theirs:
            try:
                while True:
                    total += theirs.send(b"x" * 65536)
            except BlockingIOError:
                pass  # the kernel holds as much as it will

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticker = asyncio.create_task(tick())
            read = 0
            try:
                async with asyncio.timeout(0.02):
                    # One byte at a time: data is always ready, no read ever blocks.
                    while data := await receive(loop, ours, 1):
                        read += len(data)
            except TimeoutError:
                pass
            ticker.cancel()
        return ticks, read, total

    ticks, read, total = asyncio.run(run())
    assert read < total
    assert ticks > 10
