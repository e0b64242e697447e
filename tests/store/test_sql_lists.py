"""``column IN list`` on both databases: the same answers as Python's ``in``, empty
lists included, and a statement whose text does not grow with the list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from certvigil.store import Store
from certvigil.store.models import ENDPOINTS
from certvigil.store.sql_lists import none_of_parameter, one_of, one_of_parameter
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, ok_report

HOSTS = [f"h{i}.example.test" for i in range(12)]


@pytest.fixture
def ids(store: Store) -> dict[str, int]:
    store.record_reports(
        [
            ok_report(
                Target(host=host, port=443), (facts(host, not_after_utc=NOW + timedelta(days=90)),)
            )
            for host in HOSTS
        ]
    )
    with store.read() as connection:
        e = ENDPOINTS.c
        return {host: endpoint_id for host, endpoint_id in connection.execute(select(e.host, e.id))}


@pytest.mark.parametrize(
    "wanted",
    [[], ["h3.example.test"], HOSTS[::2], HOSTS, ["nowhere.test", "h1.example.test"]],
    ids=["empty", "one", "half", "all", "unknown"],
)
def test_lists_of_strings_and_integers_answer_as_python(
    store: Store, ids: dict[str, int], wanted: list[str]
) -> None:
    e = ENDPOINTS.c
    name = store.engine.dialect.name
    numbers = [ids[host] for host in wanted if host in ids] + [10**9]
    with store.read() as connection:
        by_host = set(
            connection.execute(select(e.host).where(one_of(name, e.host, wanted))).scalars()
        )
        by_id = set(
            connection.execute(
                select(e.host).where(one_of_parameter(name, e.id, "b")), {"b": numbers}
            ).scalars()
        )
        others = set(
            connection.execute(
                select(e.host).where(none_of_parameter(name, e.id, "b")), {"b": numbers}
            ).scalars()
        )
    assert by_host == {host for host in HOSTS if host in wanted}
    assert by_id == by_host
    assert others == set(HOSTS) - by_host


def test_the_statement_is_the_same_text_for_any_length(store: Store, ids: dict[str, int]) -> None:
    """Three values or three hundred: one statement text, so neither SQLAlchemy nor the
    driver renders or parses it again per value."""
    e = ENDPOINTS.c
    statement = select(e.host).where(one_of_parameter(store.engine.dialect.name, e.id, "b"))
    seen: list[str] = []

    def remember(_c: Any, _cur: Any, text: str, *_args: Any) -> None:
        seen.append(text)

    event.listen(store.engine, "before_cursor_execute", remember)
    try:
        with store.read() as connection:
            for count in (3, 300):
                connection.execute(statement, {"b": list(range(1, count + 1))}).all()
    finally:
        event.remove(store.engine, "before_cursor_execute", remember)
    texts = [text for text in seen if "endpoints" in text]
    assert len(texts) == 2 and texts[0] == texts[1], texts
