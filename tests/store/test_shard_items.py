"""A shard's recorded items: claimed once, then linked to the observations they became."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from certvigil.store import Store
from certvigil.store import distributed as shards_db
from certvigil.store.distributed_models import SCAN_SHARD_ITEMS

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def _items(store: Store) -> dict[tuple[str, int], tuple[int | None, bool]]:
    i = SCAN_SHARD_ITEMS.c
    with store.read() as connection:
        rows = connection.execute(
            select(i.shard_id, i.item_index, i.observation_id, i.poisoned)
        ).all()
    return {(r.shard_id, r.item_index): (r.observation_id, bool(r.poisoned)) for r in rows}


def test_each_claimed_item_gets_its_own_observation_and_no_other_shard_changes(
    store: Store,
) -> None:
    with store.write() as connection:
        shards_db.add_shards(connection, [("a", "round", 6), ("b", "round", 6)], now=NOW)
        assert shards_db.claim_items(connection, "a", [0, 1, 2, 3]) == {0, 1, 2, 3}
        assert shards_db.claim_items(connection, "b", [0, 1]) == {0, 1}
        # Claimed again (a second delivery): nothing is claimed twice.
        assert shards_db.claim_items(connection, "a", [2, 3, 4]) == {4}
    with store.write() as connection:
        shards_db.link_observations(
            connection, "a", [(3, 9_000_000_001), (0, 17), (4, 5)], poisoned=False
        )
        shards_db.link_observations(connection, "a", [(1, 18)], poisoned=True)
    assert _items(store) == {
        ("a", 0): (17, False),
        ("a", 1): (18, True),
        ("a", 2): (None, False),
        ("a", 3): (9_000_000_001, False),
        ("a", 4): (5, False),
        ("b", 0): (None, False),
        ("b", 1): (None, False),
    }
    with store.read() as connection:
        assert shards_db.shard_observation_count(connection, "round") == 7
