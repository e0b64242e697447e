"""``inventory --grade-below / --revoked / --weak-protocols``: filters on the latest
results of the daemon's optional checks, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from certvigil.cli.app import main
from certvigil.cli.exitcodes import ExitCode
from certvigil.store import open_store
from certvigil.store.models import ENDPOINTS
from certvigil.targets.target import Target
from tests.store.factories import facts, ok_report

NOW = datetime.now(UTC).replace(microsecond=0)

# host, grade, revocation status, accepted protocols
FLEET = [
    ("a.example.test", "A+", "good", "TLSv1.2,TLSv1.3"),
    ("b.example.test", "B", "good", "TLSv1.0,TLSv1.1,TLSv1.2"),
    ("c.example.test", "F", "revoked", "SSLv3,TLSv1.2"),
    ("t.example.test", "T", "unreachable", "TLSv1.2"),
    ("n.example.test", None, None, None),  # never graded nor checked
    ("x.example.test", "A", "good", "TLSv1.2,TLSv1.10"),  # no such protocol: no match
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.fixture
def fleet_url(store_url: str) -> str:
    store = open_store(store_url)
    for host, grade, status, protocols in FLEET:
        target = Target(host=host, port=443)
        leaf = facts(host, not_after_utc=NOW + timedelta(days=60))
        store.record_report(ok_report(target, (leaf,), at=NOW - timedelta(hours=1)))
        with store.write() as connection:
            connection.execute(
                update(ENDPOINTS)
                .where(ENDPOINTS.c.host == host)
                .values(grade=grade, revocation_status=status, protocols=protocols)
            )
    store.close()
    return store_url


def _hosts(out: str) -> list[str]:
    return sorted(c["host"] for c in json.loads(out)["certificates"])


@pytest.mark.parametrize(
    ("options", "hosts", "code"),
    [
        (["--grade-below", "B"], ["c.example.test", "t.example.test"], ExitCode.WARNING),
        (["--grade-below", "a"], ["b.example.test", "c.example.test", "t.example.test"], 1),
        (["--revoked"], ["c.example.test"], ExitCode.CRITICAL),
        (["--weak-protocols"], ["b.example.test", "c.example.test"], ExitCode.WARNING),
        (["--weak-protocols", "--grade-below", "C"], ["c.example.test"], ExitCode.WARNING),
        (["--grade-below", "M"], [], ExitCode.OK),
    ],
)
def test_check_filters(
    fleet_url: str,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    hosts: list[str],
    code: int,
) -> None:
    """Each filter keeps exactly the endpoints its rule names; never-graded ones never
    match a grade filter."""
    exit_code, out, _err = _run(["inventory", "--db", fleet_url, "--json", *options], capsys)
    assert _hosts(out) == hosts
    assert exit_code == code


def test_grade_and_revocation_are_shown(fleet_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """JSON carries grade, revocation status and protocols; the table shows the first two."""
    _code, out, _err = _run(["inventory", "--db", fleet_url, "--json"], capsys)
    rows = {c["host"]: c for c in json.loads(out)["certificates"]}
    assert rows["c.example.test"]["grade"] == "F"
    assert rows["c.example.test"]["revocation_status"] == "revoked"
    assert rows["b.example.test"]["protocols"] == ["TLSv1.0", "TLSv1.1", "TLSv1.2"]
    assert rows["n.example.test"]["grade"] is None
    _code, out, _err = _run(["inventory", "--db", fleet_url], capsys)
    assert "grade" in out and "revoked" in out


def test_unknown_grade_is_a_usage_error(fleet_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A grade that does not exist: one error line naming the option, exit 64."""
    code, _out, err = _run(["inventory", "--db", fleet_url, "--grade-below", "Z"], capsys)
    assert code == ExitCode.USAGE
    assert err.startswith('error: --grade-below: grade "Z"')
