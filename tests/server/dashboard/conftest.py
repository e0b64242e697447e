"""Fixtures for the dashboard tests: a seeded SQLite store with one user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from certvigil.store import Store, open_store
from tests.server.dashboard.support import Seeded, add_user, seed


@pytest.fixture
def seeded_store(tmp_path: Path) -> Iterator[tuple[Store, Seeded]]:
    """A SQLite store in tmp_path with the seed's data and the user alice."""
    with open_store(str(tmp_path / "dash.db")) as store:
        seeded = seed(store)
        add_user(store)
        yield store, seeded
