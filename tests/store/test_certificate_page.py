"""The certificate list's pages, cut in the database, against the whole inventory sorted here.

A drawn fleet (certificates shared by several endpoints, equal expiries, issuers and
subjects, labels, grades, replaced deployments and intermediates that the list leaves
out) is stored; every sort order and filter is then read page by page through the
cursor, on SQLite and PostgreSQL, and must give the inventory's rows, each once, in the
order of (sort value, fingerprint, endpoint id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from certvigil.store import Store
from certvigil.store.ingest import certificate_row
from certvigil.store.models import CERTIFICATES, DEPLOYMENTS, ENDPOINT_TAGS, ENDPOINTS
from certvigil.store.queries import CheckFilter, inventory
from certvigil.store.records import InventoryRow
from certvigil.store.server_queries import CERTIFICATE_SORTS, certificate_page
from tests.store.factories import NOW, facts

ISSUERS = ("CN=Alpha CA,O=Example", "CN=beta ca", "CN=Beta CA,O=Other", "CN=Zeta CA")
HOSTS = ("a.example.test", "b.example.test", "a.internal.test", "10.0.0.1", "zz.test")
EXPIRY_DAYS = (-3, 5, 5.5, 20, 40, 400)


@dataclass(frozen=True, slots=True)
class Cert:
    """A drawn certificate: expiry (days from NOW), issuer and subject name."""

    expiry_days: float
    issuer: str
    name: str


@dataclass(frozen=True, slots=True)
class Place:
    """A drawn endpoint: host, the certificate it serves now, labels, grade, history."""

    host: str
    cert: int
    tags: frozenset[str]
    grade: str | None
    replaced: int | None
    intermediate: int | None


certs_strategy = st.lists(
    st.builds(
        Cert,
        st.sampled_from(EXPIRY_DAYS),
        st.sampled_from(ISSUERS),
        st.sampled_from(("www", "api", "mail")),
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def fleets(draw: st.DrawFn) -> tuple[list[Cert], list[Place]]:
    """Certificates and the endpoints serving them."""
    certs = draw(certs_strategy)
    index = st.integers(0, len(certs) - 1)
    places = draw(
        st.lists(
            st.builds(
                Place,
                st.sampled_from(HOSTS),
                index,
                st.frozensets(st.sampled_from(("prod", "lab"))),
                st.sampled_from((None, "A", "B", "C", "F")),
                st.none() | index,
                st.none() | index,
            ),
            min_size=1,
            max_size=9,
        )
    )
    return certs, places


queries = st.fixed_dictionaries(
    {
        "sort": st.sampled_from([f"{d}{f}" for f in CERTIFICATE_SORTS for d in ("", "-")]),
        "limit": st.integers(1, 4),
        "expiring_within_days": st.sampled_from((None, 10.0)),
        "host_glob": st.sampled_from((None, "a*", "*.test")),
        "issuer": st.sampled_from((None, "beta")),
        "tag": st.sampled_from((None, "prod")),
        "grade_below": st.sampled_from((None, "B")),
    }
)


def store_fleet(store: Store, certs: list[Cert], places: list[Place]) -> None:
    """Writes the fleet's rows (endpoints in drawn order get ports 1, 2, ...)."""
    made = [
        facts(
            f"{c.name}-{n}",
            not_after_utc=NOW + timedelta(days=c.expiry_days),
            issuer=c.issuer,
        )
        for n, c in enumerate(certs)
    ]
    # Subjects repeat across certificates (CN=www for several), as in a fleet.
    rows = [
        certificate_row(f, None, NOW) | {"subject": f"CN={c.name}"}
        for f, c in zip(made, certs, strict=True)
    ]
    since = NOW - timedelta(days=30)
    with store.write() as connection:
        connection.execute(CERTIFICATES.insert(), rows)
        for number, place in enumerate(places, start=1):
            current = made[place.cert]
            connection.execute(
                ENDPOINTS.insert().values(
                    id=number,
                    host=place.host,
                    port=number,
                    sni="",
                    starttls="",
                    first_seen_utc=since,
                    last_seen_utc=NOW,
                    last_ok_utc=NOW,
                    last_status="ok",
                    consecutive_failures=0,
                    current_certificate_sha256=current.sha256_hex,
                    grade=place.grade,
                )
            )
            deployments = [(current, 0, True)]
            if place.replaced is not None and place.replaced != place.cert:
                deployments.append((made[place.replaced], 0, False))
            if place.intermediate is not None and place.intermediate not in (
                place.cert,
                place.replaced,
            ):
                deployments.append((made[place.intermediate], 1, True))
            for served, position, is_current in deployments:
                connection.execute(
                    DEPLOYMENTS.insert().values(
                        endpoint_id=number,
                        certificate_sha256=served.sha256_hex,
                        chain_position=position,
                        not_after_utc=served.not_after_utc,
                        first_seen_utc=since,
                        last_seen_utc=NOW,
                        is_current=is_current,
                    )
                )
            for tag in sorted(place.tags):
                connection.execute(ENDPOINT_TAGS.insert().values(endpoint_id=number, tag=tag))


def clear(store: Store) -> None:
    """Removes what :func:`store_fleet` wrote."""
    with store.write() as connection:
        for table in (ENDPOINT_TAGS, DEPLOYMENTS, ENDPOINTS, CERTIFICATES):
            connection.execute(delete(table))


def expected(store: Store, query: dict[str, Any], now: datetime) -> list[tuple[str, int]]:
    """The inventory's leaves, filtered and sorted here: (fingerprint, endpoint id)."""
    field = query["sort"].lstrip("-")

    def key(row: InventoryRow) -> tuple[Any, str, int]:
        value: Any = {
            "not_after": row.not_after_utc,
            "host": row.target.host,
            "issuer": row.issuer,
            "subject": row.subject,
        }[field]
        return (value, row.sha256_hex, row.endpoint_id)

    with store.read() as connection:
        rows = inventory(
            connection,
            now=now,
            expiring_within_days=query["expiring_within_days"],
            host_glob=query["host_glob"],
            issuer=query["issuer"],
            tag=query["tag"],
            checks=CheckFilter(grade_below=query["grade_below"]),
        )
    ordered = sorted(rows, key=key, reverse=query["sort"].startswith("-"))
    return [(r.sha256_hex, r.endpoint_id) for r in ordered]


def paged(store: Store, query: dict[str, Any], now: datetime) -> list[tuple[str, int]]:
    """Every page through the cursor, joined."""
    seen: list[tuple[str, int]] = []
    after: list[Any] | None = None
    for _ in range(100):
        with store.read() as connection:
            rows, after = certificate_page(connection, now=now, after=after, **query)
        assert len(rows) <= query["limit"]
        assert rows or after is None, "an empty page that promises more"
        seen += [(r.sha256_hex, r.endpoint_id) for r in rows]
        if after is None:
            return seen
    raise AssertionError("the cursor never reached the end")


@pytest.mark.slow
@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fleet=fleets(), drawn=st.lists(queries, min_size=1, max_size=4))
@example(
    # One certificate on three endpoints with equal hosts: ties all the way to the id.
    fleet=(
        [Cert(5, ISSUERS[0], "www")],
        [Place("a.example.test", 0, frozenset(), None, None, None)] * 3,
    ),
    drawn=[
        {
            "sort": s,
            "limit": 1,
            "expiring_within_days": None,
            "host_glob": None,
            "issuer": None,
            "tag": None,
            "grade_below": None,
        }
        for s in ("host", "-host", "not_after", "-not_after")
    ],
)
def test_pages_joined_are_the_sorted_inventory(
    store: Store, fleet: tuple[list[Cert], list[Place]], drawn: list[dict[str, Any]]
) -> None:
    """Pages read through the cursor are the filtered leaves, each once, in key order."""
    certs, places = fleet
    store_fleet(store, certs, places)
    try:
        for query in drawn:
            assert paged(store, query, NOW) == expected(store, query, NOW), query
    finally:
        clear(store)


@pytest.mark.parametrize(
    ("sort", "after"),
    [
        ("not_after", ["not a time", "ab", 1]),
        ("not_after", ["2026-01-01T00:00:00", "ab", 1]),  # no zone
        ("host", ["a", "ab", 2**64]),
        ("host", ["a", "ab", True]),
        ("host", ["\ud800", "ab", 1]),
        ("issuer", ["a", 7, 1]),
        ("subject", ["a", "b"]),
    ],
)
def test_a_cursor_the_list_did_not_make_is_refused(
    store: Store, sort: str, after: list[Any]
) -> None:
    """Malformed cursor values are refused by name before they reach the database."""
    with store.read() as connection, pytest.raises(ValueError, match="cursor"):
        certificate_page(connection, now=NOW, sort=sort, after=after)
