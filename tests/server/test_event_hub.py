"""The alert-event hub wakes at once when told to, from whichever thread tells it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

from certvigil.server.events import AlertEventHub
from certvigil.store import open_store
from tests.server.test_stream import open_alert

LONG_POLL_S = 60.0
"""Far longer than the test waits: only a wake can make the hub look in time."""

PROMPT_S = 10.0

WAKE_AFTER_S = 0.3


def test_a_wake_from_another_thread_makes_the_hub_read_the_new_event_at_once(
    tmp_path: Path,
) -> None:
    # The server's request threads commit events and then wake the hub; an asyncio
    # event set from outside the loop's thread left the loop asleep for the interval.
    store = open_store(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = AlertEventHub(store, poll_s=LONG_POLL_S)

    async def main() -> float:
        task = asyncio.create_task(hub.run())
        try:
            await asyncio.sleep(0.3)  # started and polled once: the hub now waits
            assert not task.done()
            alert_id = await asyncio.to_thread(open_alert, store, 1)
            assert alert_id
            # The wake comes while the loop sleeps, and the test waits on a thread of
            # its own: nothing but the wake can stir the loop.
            waker = threading.Timer(WAKE_AFTER_S, hub.wake)
            started = time.monotonic()
            waker.start()
            try:
                await asyncio.to_thread(_until_read, hub, started + PROMPT_S)
            finally:
                waker.join()
            return time.monotonic() - started
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    try:
        waited = asyncio.run(main())
    finally:
        store.close()
    assert hub.last_id > 0, f"the hub had not read the event {PROMPT_S} s after the wake"
    assert waited < PROMPT_S


def _until_read(hub: AlertEventHub, deadline: float) -> None:
    while hub.last_id == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
