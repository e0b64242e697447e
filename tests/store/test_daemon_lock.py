"""The daemon lock: one live daemon per database, stale locks taken over (SQLite, PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta

import pytest

from certvigil.store import Store
from certvigil.store.daemon_lock import (
    DaemonLockedError,
    acquire_daemon_lock,
    daemon_lock_holder,
    release_daemon_lock,
    renew_daemon_lock,
)
from certvigil.store.outbox import WorkerId, host_identity, new_worker_id
from tests.store.factories import NOW


def _acquire(store: Store, owner: WorkerId, *, at=NOW, lease_s: float = 60.0):
    with store.write() as connection:
        return acquire_daemon_lock(
            connection, owner=owner, now=at, database=store.url, lease_s=lease_s
        )


def test_a_second_daemon_is_refused_while_the_first_holds_the_lock(
    store: Store, open_another_store: Callable[[], Store]
) -> None:
    """The second owner gets an error naming the holder's process and host; the first renews."""
    first = WorkerId(host="db-host-a.invalid", pid=4242, nonce="aa")
    assert _acquire(store, first) is None
    other = open_another_store()
    with pytest.raises(DaemonLockedError) as info:
        _acquire(other, new_worker_id(), at=NOW + timedelta(seconds=30))
    message = str(info.value)
    assert "in use by another certvigil daemon" in message
    assert "process 4242 on host db-host-a.invalid" in message
    assert "stop it first" in message
    with store.write() as connection:
        assert renew_daemon_lock(connection, owner=first, now=NOW + timedelta(seconds=50))
    with pytest.raises(DaemonLockedError):
        _acquire(other, new_worker_id(), at=NOW + timedelta(seconds=100))


def test_a_lapsed_lock_is_taken_over_and_its_old_holder_cannot_renew(store: Store) -> None:
    """Once the lease lapses a new daemon takes the lock; the old holder learns it lost it."""
    old = WorkerId(host="db-host-a.invalid", pid=4242, nonce="aa")
    _acquire(store, old)
    new = new_worker_id()
    previous = _acquire(store, new, at=NOW + timedelta(seconds=61))
    assert previous is not None and previous.owner == str(old)
    with store.read() as connection:
        holder = daemon_lock_holder(connection)
    assert holder is not None and holder.owner == str(new)
    with store.write() as connection:
        assert not renew_daemon_lock(connection, owner=old, now=NOW + timedelta(seconds=62))
        assert not release_daemon_lock(connection, owner=old)
        assert release_daemon_lock(connection, owner=new)
    with store.read() as connection:
        assert daemon_lock_holder(connection) is None


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(store: Store) -> None:
    """A holder on this host whose process is gone does not make the next daemon wait."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    dead = WorkerId(host=host_identity(), pid=child.pid, nonce="dd")
    _acquire(store, dead, lease_s=3600)
    previous = _acquire(store, new_worker_id(), at=NOW + timedelta(seconds=1))
    assert previous is not None and previous.owner == str(dead)


def test_taking_the_lock_again_as_its_holder_renews_it(store: Store) -> None:
    """The holder (a reloaded daemon in the same process) takes its own lock again."""
    me = new_worker_id()
    _acquire(store, me)
    assert _acquire(store, me, at=NOW + timedelta(seconds=10)) is None


def test_a_process_of_the_same_id_in_another_pid_namespace_is_not_taken_for_dead(
    store: Store,
) -> None:
    """A holder with this host name but another process-id namespace keeps its lock."""
    name = host_identity().partition("/")[0]
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    elsewhere = WorkerId(host=f"{name}/1", pid=child.pid, nonce="ns")
    _acquire(store, elsewhere, lease_s=3600)
    with pytest.raises(DaemonLockedError, match=f"process {child.pid} on host {name} "):
        _acquire(store, new_worker_id(), at=NOW + timedelta(seconds=1))
