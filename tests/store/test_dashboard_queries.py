"""The dashboard's store queries on SQLite and PostgreSQL: overview, inventory, users."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certvigil.store import Store
from certvigil.store import dashboard as board
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

CA = "CN=Corp CA,O=Example"


def _leaf(store: Store, host: str, days: float, *, issuer: str = CA, port: int = 443) -> str:
    leaf = facts(host, not_after_utc=NOW + timedelta(days=days), issuer=issuer)
    store.record_report(ok_report(Target(host=host, port=port), (leaf,)))
    return leaf.sha256_hex


def test_overview_buckets_distinct_leaves_by_week(store: Store) -> None:
    """Each leaf counts once, in the week its expiry falls in; expired and later ones
    are counted apart; a failing endpoint counts in the statuses only."""
    _leaf(store, "a.test", 0.5)  # week 0
    _leaf(store, "b.test", 6.9)  # week 0
    _leaf(store, "c.test", 7.1)  # week 1
    _leaf(store, "d.test", 363)  # week 51
    _leaf(store, "e.test", 365)  # after the timeline
    _leaf(store, "f.test", -1)  # expired
    # The same certificate on a second port is one certificate.
    same = facts("c.test", not_after_utc=NOW + timedelta(days=7.1), issuer=CA)
    store.record_report(ok_report(Target(host="c.test", port=8443), (same,)))
    store.record_report(failed_report(Target(host="down.test", port=443)))
    with store.read() as connection:
        data = board.overview(connection, now=NOW)
    assert data.certificates == 6
    assert data.expired == 1
    assert data.later == 1
    assert data.expiring_by_week[0] == 2
    assert data.expiring_by_week[1] == 1
    assert data.expiring_by_week[51] == 1
    assert sum(data.expiring_by_week) == 4
    assert dict(data.endpoints_by_status) == {"ok": 7, "failed": 1}
    assert data.issuers == (("Corp CA", 6),)
    assert data.grades == ()  # graded only by a deep scan; none recorded here


def test_inventory_page_search_is_literal_and_sorting_is_stable(store: Store) -> None:
    """Search text is matched literally (a % or _ matches only itself), a fingerprint
    prefix finds its certificate, and paging walks every row once."""
    shas = {h: _leaf(store, h, d) for h, d in [("a_b.test", 5), ("axb.test", 6), ("c.test", 7)]}
    with store.read() as connection:

        def hosts(**kwargs: object) -> list[str]:
            page = board.inventory_page(connection, board.InventoryQuery(**kwargs), now=NOW)
            return [e.target.host for e in page.entries]

        assert hosts(search="a_b") == ["a_b.test"]
        assert hosts(search="%") == []
        assert hosts(search=shas["c.test"][:10]) == ["c.test"]
        assert hosts(sort=board.SortKey.HOST, descending=True) == ["c.test", "axb.test", "a_b.test"]
        walked = [h for p in (1, 2, 3) for h in hosts(per_page=1, page=p)]
        assert walked == ["a_b.test", "axb.test", "c.test"]
        assert hosts(expiring_within_days=6) == ["a_b.test"]
        with pytest.raises(ValueError, match="per_page"):
            hosts(per_page=board.MAX_PAGE_SIZE + 1)


def test_users_and_sessions(store: Store) -> None:
    """A user is unique by name; a session is found until it expires; removing the user
    ends their sessions."""
    with store.write() as connection:
        user_id = board.add_user(connection, name="alice", password_hash="h", now=NOW)
        with pytest.raises(board.UserExistsError):
            board.add_user(connection, name="alice", password_hash="h2", now=NOW)
        board.create_session(
            connection,
            user_id=user_id,
            token_sha256="t" * 64,
            csrf_token="c",
            now=NOW,
            lifetime=timedelta(hours=1),
        )
    with store.read() as connection:
        found = board.find_session(connection, "t" * 64, now=NOW + timedelta(minutes=59))
        assert found is not None and found.user_name == "alice"
        assert board.find_session(connection, "t" * 64, now=NOW + timedelta(hours=1)) is None
    with store.write() as connection:
        assert board.remove_user(connection, "alice")
        assert not board.remove_user(connection, "alice")
    with store.read() as connection:
        assert board.find_session(connection, "t" * 64, now=NOW) is None


def test_login_throttle_counts_within_a_window(store: Store) -> None:
    """Failures add up within the window, start again after it, and clear on success."""
    window = timedelta(minutes=15)
    limits = {"user:alice": 2}
    with store.write() as connection:
        for minute in (0, 1):
            board.record_login_failure(
                connection, limits, now=NOW + timedelta(minutes=minute), window=window
            )
        assert board.login_blocked(
            connection, limits, now=NOW + timedelta(minutes=2), window=window
        )
        assert not board.login_blocked(
            connection, limits, now=NOW + timedelta(minutes=16), window=window
        )
        board.record_login_failure(
            connection, limits, now=NOW + timedelta(minutes=16), window=window
        )
        assert not board.login_blocked(
            connection, limits, now=NOW + timedelta(minutes=17), window=window
        )
        board.clear_login_failures(connection, limits)
        assert not board.login_blocked(connection, limits, now=NOW, window=window)


def test_the_grade_spread_counts_each_endpoints_latest_grade(store: Store) -> None:
    """An endpoint graded once counts with that grade after later scans that do not
    grade (the assessment runs daily); ungraded endpoints are left out."""
    from sqlalchemy import update

    from certvigil.store.models import ENDPOINTS

    # Given three endpoints whose latest observations carry no grade,
    for port in (443, 8443, 9443):
        leaf = facts(f"g{port}", not_after_utc=NOW + timedelta(days=60))
        store.record_report(ok_report(Target(host="g.example.test", port=port), (leaf,)))
    # when two of them were graded B and F by an earlier assessment (kept on the row),
    with store.write() as connection:
        connection.execute(update(ENDPOINTS).where(ENDPOINTS.c.port == 443).values(grade="B"))
        connection.execute(update(ENDPOINTS).where(ENDPOINTS.c.port == 8443).values(grade="F"))
        data = board.overview(connection, now=NOW)
    # then the spread counts each once, by grade.
    assert data.grades == (("B", 1), ("F", 1))
