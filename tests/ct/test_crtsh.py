"""crt.sh: real recorded answers parsed, the row cap stated, back-off, deadline, size cap."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.crtsh import CRTSH_ROW_CAP, parse_crtsh_answer
from certvigil.ct.errors import FetchError, ResponseError
from certvigil.ct.fetch.crtsh import CrtshSearch, crtsh_queries, search_crtsh
from certvigil.ct.fetch.http import FetchPolicy
from tests.support.crtsh_server import CrtshFault, CrtshServer, recorded

FAST = FetchPolicy(
    qps=None, parallel=1, deadline=2.0, retries=3, backoff_base=0.01, backoff_cap=0.05
)


@pytest.fixture
def crtsh() -> Iterator[CrtshServer]:
    """A local crt.sh with the real answers for example.com and %.github.com."""
    with CrtshServer() as server:
        server.answers["example.com"] = recorded("example.com_dNSName_exclude-expired.json")
        server.answers["%.github.com"] = recorded("github.com_wildcard.json")
        yield server


def _search(server: CrtshServer, domain: str, policy: FetchPolicy = FAST) -> CrtshSearch:
    return asyncio.run(
        search_crtsh(domain, base_url=server.url, policy=policy, rng=random.Random(1))
    )


def test_the_recorded_example_answer_parses_field_by_field() -> None:
    """The real example.com answer: precert and cert with one serial, an unknown issuer."""
    answer = parse_crtsh_answer(recorded("example.com_dNSName_exclude-expired.json"))

    first, second, unknown = answer.certificates
    assert (first.crtsh_id, second.crtsh_id) == (12337892544, 11920382870)
    assert first.serial_hex == second.serial_hex == "075bcef30689c8addf13e51af4afe187"
    assert first.dns_names == ("example.com", "www.example.com", "www.example.org")
    assert first.logged_utc == datetime(2024, 3, 10, 20, 13, 50, 549000, tzinfo=UTC)
    assert first.not_after_utc == datetime(2025, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert "DigiCert Global G2 TLS RSA SHA256 2020 CA1" in first.issuer_name
    assert (unknown.issuer_ca_id, unknown.logged_utc) == (None, None)
    assert answer.malformed == ()
    assert not answer.is_capped


def test_a_search_asks_for_the_name_and_its_subtree_and_merges(crtsh: CrtshServer) -> None:
    """Both queries are made; github.com's 11 real rows come back newest first."""
    search = _search(crtsh, "GitHub.com.")

    assert crtsh.queries == ["github.com", "%.github.com"]
    assert search.domain == "github.com"
    assert len(search.answer.certificates) == 11
    logged = [c.logged_utc for c in search.answer.certificates]
    assert logged == sorted(logged, reverse=True)  # type: ignore[type-var]
    assert not search.is_capped


def test_a_full_answer_is_reported_as_capped(crtsh: CrtshServer) -> None:
    """10,000 rows (the real rows repeated under new ids) means the history is cut."""
    rows = json.loads(recorded("github.com_wildcard.json"))
    many = [{**rows[i % len(rows)], "id": 1_000_000 + i} for i in range(CRTSH_ROW_CAP)]
    crtsh.answers["%.github.com"] = json.dumps(many).encode()

    search = _search(crtsh, "github.com")

    assert search.is_capped
    assert len(search.answer.certificates) == CRTSH_ROW_CAP


def test_5xx_and_429_are_retried_with_back_off(crtsh: CrtshServer) -> None:
    """A 503 and a 429 with Retry-After: 0 are retried through; the answer arrives."""
    crtsh.faults += [CrtshFault(503, 1), CrtshFault(429, 1, retry_after="0")]

    search = _search(crtsh, "example.com")

    assert len(search.answer.certificates) == 3
    assert crtsh.queries[:3] == ["example.com"] * 3


def test_a_crtsh_that_keeps_failing_gives_a_clear_error(crtsh: CrtshServer) -> None:
    """After the retries the error names the URL and the last status."""
    crtsh.faults.append(CrtshFault(502, 10))

    with pytest.raises(FetchError, match=r"q=example\.com&output=json: HTTP status 502"):
        _search(crtsh, "example.com")


def test_an_html_page_instead_of_json_is_a_clear_error(crtsh: CrtshServer) -> None:
    """crt.sh's overload page (HTML with status 200) is refused, naming the URL."""
    crtsh.answers["example.com"] = b"<html><body>Sorry, too busy</body></html>"

    with pytest.raises(ResponseError, match="not JSON"):
        _search(crtsh, "example.com")


def test_a_never_ending_answer_hits_the_deadline(crtsh: CrtshServer) -> None:
    """A server that never stops sending fails at the deadline, not never."""
    crtsh.stream_forever = True
    policy = FetchPolicy(qps=None, deadline=0.5, retries=0)

    with pytest.raises(FetchError, match=r"within 0\.5 s"):
        _search(crtsh, "example.com", policy)


def test_an_answer_over_the_size_cap_is_refused(crtsh: CrtshServer) -> None:
    """An answer bigger than the cap is refused however it is sent."""
    policy = FetchPolicy(qps=None, deadline=2.0, retries=0, max_bytes=1000)

    with pytest.raises(FetchError, match="more than 1000"):
        _search(crtsh, "github.com", policy)


def test_a_bad_domain_is_refused_before_any_request() -> None:
    """A wildcard or a name with a space is refused with the rule stated."""
    with pytest.raises(ValueError, match="not a domain name"):
        crtsh_queries("*.example.com")
    with pytest.raises(ValueError, match="not a domain name"):
        crtsh_queries("exa mple.com")
    assert crtsh_queries("example.com", exclude_expired=True)[1] == (
        "?q=%25.example.com&output=json&exclude=expired"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"{}", "not a JSON array"), (b"\xff\xfe", "not JSON"), (b"[" * 100_000, "not JSON")],
)
def test_answers_of_the_wrong_shape_are_refused(body: bytes, message: str) -> None:
    """An object, bytes that are not UTF-8, and deep nesting are clear errors."""
    with pytest.raises(ResponseError, match=message):
        parse_crtsh_answer(body)


def test_a_bad_row_is_skipped_and_named() -> None:
    """A row with a broken field is listed with its position; the good rows remain."""
    rows = json.loads(recorded("github.com_wildcard.json"))
    rows[1]["serial_number"] = "not hex"
    rows[2]["not_after"] = 12
    rows[3]["id"] = True
    rows[4] = "text"

    answer = parse_crtsh_answer(json.dumps(rows).encode())

    assert len(answer.certificates) == 7
    assert answer.malformed == (
        "row 2: serial_number is not hex",
        "row 3: not_after is not a date and time",
        "row 4: id is not an integer",
        "row 5: not an object",
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)
_row_keys = st.sampled_from(
    ["id", "issuer_ca_id", "issuer_name", "common_name", "name_value", "entry_timestamp",
     "not_before", "not_after", "serial_number", "result_count"]
)  # fmt: skip


@given(st.lists(st.dictionaries(_row_keys, _json, max_size=10), max_size=5))
@example([{"id": 1, "issuer_ca_id": -1, "issuer_name": "x", "name_value": "\n\n",
           "not_before": "2024-01-01T00:00:00.1234567", "not_after": "2024-02-01T00:00:00+05:00",
           "serial_number": "AB"}])  # fmt: skip
def test_any_json_rows_parse_or_are_skipped_never_crash(rows: list[dict[str, object]]) -> None:
    """Every row either parses or is listed as malformed; nothing else escapes."""
    answer = parse_crtsh_answer(json.dumps(rows).encode())

    assert len(answer.certificates) + len(answer.malformed) == len(rows)
    for certificate in answer.certificates:
        assert certificate.not_after_utc.tzinfo is UTC
