"""The certificates a database holds with their bytes, as far as this process has seen.

A ``certificates`` row is never deleted, and bytes once stored are never taken away: a
digest seen stored with its bytes stays so. A batch of observations (a server's next
cycle of the same fleet) then need not ask the database about the certificates it has
already seen. Digests seen in a transaction count only once ``Store.write`` has
committed it (:func:`committed`); a transaction rolled back, or one begun elsewhere,
adds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Engine

__all__ = ["begun", "committed", "known_stored", "seen_stored"]

_PENDING = "certvigil.certificates_seen"
_MAX = 1_000_000
"""Digests kept per database (about 150 bytes each); past it the set starts again."""
_STORED: WeakKeyDictionary[Engine, set[str]] = WeakKeyDictionary()
_LOCK = threading.Lock()


def known_stored(connection: Connection) -> set[str]:
    """The SHA-256 (hex) of certificates known stored with their bytes, by transactions
    committed before, in the database ``connection`` is on."""
    engine = connection.engine
    stored = _STORED.get(engine)
    if stored is None:
        with _LOCK:
            stored = _STORED.setdefault(engine, set())
    return stored


def seen_stored(connection: Connection, digests: Iterable[str]) -> None:
    """``digests`` are stored with their bytes as of this transaction (read or written
    in it); they count once it is committed."""
    pending: set[str] = connection.info.setdefault(_PENDING, set())
    pending.update(digests)


def begun(connection: Connection) -> None:
    """A write transaction begins: nothing seen by an earlier one is pending."""
    connection.info.pop(_PENDING, None)


def committed(connection: Connection) -> None:
    """The write transaction committed: what it saw stored counts from now on."""
    pending = connection.info.pop(_PENDING, None)
    if pending:
        stored = known_stored(connection)
        with _LOCK:
            if len(stored) + len(pending) > _MAX:
                stored.clear()
            stored.update(pending)
