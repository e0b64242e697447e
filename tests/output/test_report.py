"""``certvigil report``: problems first, weekly expiry bins, and hostile certificate text
shown, never run, in HTML, Markdown and CSV; end to end from a real scan's JSON and from
the store."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.analysis.model import Finding, Severity
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from certvigil.integrations.snapshot import snapshots_from_scan_document
from certvigil.output.json_doc import endpoint_json
from certvigil.output.report_data import WEEKS, build_report
from certvigil.output.report_html import render_report_html
from certvigil.output.report_text import md_text, render_report_csv, render_report_md
from certvigil.store import open_store
from certvigil.targets.target import Target
from tests.cli.scan_lab import run_cli
from tests.store.factories import NOW, facts, failed_report, ok_report

HOSTILE_CN = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
HOSTILE_ORG = '=HYPERLINK("http://evil.example/","x") [link](javascript:alert(3)) |cell|'
FAST = ("--connect-timeout", "2", "--handshake-timeout", "2", "--retries", "0")


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html_text: str) -> _Elements:
    parser = _Elements()
    parser.feed(html_text)
    return parser


def _snapshots(*reports):
    document = {
        "schema_version": 1,
        "endpoints": [json.loads(json.dumps(endpoint_json(r))) for r in reports],
    }
    return snapshots_from_scan_document(document)


def _hostile_leaf():
    leaf = facts("x.example.com", not_after_utc=NOW + timedelta(days=3))
    values = {name: getattr(leaf, name) for name in leaf.__dataclass_fields__}
    values.update(
        subject=f"CN={HOSTILE_CN},O={HOSTILE_ORG}",
        subject_cn=HOSTILE_CN,
        issuer_cn=HOSTILE_ORG + "\u202e\x1b[31m",
    )
    return type(leaf)(**values)


def test_problems_come_first_worst_then_soonest() -> None:
    """Critical, then not observed, then warnings by expiry, then the fine ones."""
    now = NOW
    fine = ok_report(
        Target(host="fine.test", port=443), (facts("f", not_after_utc=now + timedelta(days=200)),)
    )
    soon = ok_report(
        Target(host="soon.test", port=443), (facts("s", not_after_utc=now + timedelta(days=10)),)
    )
    sooner = ok_report(
        Target(host="sooner.test", port=443), (facts("r", not_after_utc=now + timedelta(days=2)),)
    )
    bad = ok_report(
        Target(host="bad.test", port=443),
        (facts("b", not_after_utc=now + timedelta(days=300)),),
        is_trusted=False,
        findings=(
            Finding(code="untrusted", severity=Severity.CRITICAL, message="chain not trusted"),
        ),
    )
    down = failed_report(Target(host="down.test", port=443))

    data = build_report(_snapshots(fine, soon, sooner, bad, down), now=now, source="test")

    assert [r.endpoint for r in data.rows] == [
        "bad.test:443", "down.test:443", "sooner.test:443", "soon.test:443", "fine.test:443",
    ]  # fmt: skip
    assert [r.status for r in data.rows] == ["critical", "unknown", "warning", "warning", "ok"]
    assert data.rows[2].problems == ("expires in 2 days",)
    assert len(data.problems) == 4


def test_expiry_timeline_counts_leaves_per_week() -> None:
    """Leaves fall in the week of their expiry; expired and beyond-52-weeks ones apart."""
    days = [-1, 0.5, 6.9, 7.1, 20, 363, 365, 400]
    reports = [
        ok_report(
            Target(host=f"h{i}.test", port=443),
            (facts(f"c{i}", not_after_utc=NOW + timedelta(days=d)),),
        )
        for i, d in enumerate(days)
    ]
    data = build_report(_snapshots(*reports), now=NOW, source="test")

    assert data.expired == 1
    assert len(data.expiry_by_week) == WEEKS
    assert data.expiry_by_week[0] == 2
    assert data.expiry_by_week[1] == 1
    assert data.expiry_by_week[2] == 1
    assert data.expiry_by_week[51] == 1
    assert data.expiring_later == 2
    assert sum(data.expiry_by_week) + data.expired + data.expiring_later == len(days)


def test_html_shows_hostile_certificate_text_and_runs_none_of_it() -> None:
    """Script, image and link text from a certificate appear as text; the page has no
    script, no img, no link or src/href at all, and a policy forbidding loads."""
    report = ok_report(Target(host="x.example.com", port=443), (_hostile_leaf(),))
    stream = io.StringIO()
    render_report_html(build_report(_snapshots(report), now=NOW, source="<b>src</b>"), stream)
    page = stream.getvalue()
    parsed = _parse(page)

    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "img", "a", "link", "iframe", "object", "embed", "image"}
    assert all(
        not (set(attrs) & {"src", "href", "onerror", "onload", "xlink:href"})
        for _, attrs in parsed.tags
    )
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", page, re.IGNORECASE)
    text = "".join(parsed.text)
    assert HOSTILE_CN in text
    assert "\\u202e\\x1b[31m" in text  # bidi override and escape shown, not obeyed
    assert "\x1b" not in page and "\u202e" not in page
    policy = [a for t, a in parsed.tags if t == "meta" and a.get("http-equiv")]
    assert policy[0]["content"].startswith("default-src 'none'")


def test_html_is_one_file_for_phones_and_print() -> None:
    """Styles are inline with a narrow-screen layout and print rules; charts are inline SVG."""
    reports = [
        ok_report(
            Target(host="a.test", port=443), (facts("a", not_after_utc=NOW + timedelta(days=9)),)
        ),
        failed_report(Target(host="b.test", port=443)),
    ]
    stream = io.StringIO()
    render_report_html(build_report(_snapshots(*reports), now=NOW, source="t"), stream)
    page = stream.getvalue()
    parsed = _parse(page)

    assert page.count("<svg") == 3
    assert "@media (max-width:720px)" in page and "@media print" in page
    assert (
        "meta",
        {"name": "viewport", "content": "width=device-width,initial-scale=1"},
    ) in parsed.tags
    assert page.index("Problems (2)") < page.index("Charts") < page.index("Everything else (0)")


def test_csv_cells_cannot_become_formulas() -> None:
    """A subject or issuer starting with = + - @ is written with a leading quote."""
    leaf = _hostile_leaf()
    values = {name: getattr(leaf, name) for name in leaf.__dataclass_fields__}
    values.update(subject_cn="=cmd|' /C calc'!A0", issuer_cn="@SUM(1+1)", subject="+x")
    leaf = type(leaf)(**values)
    stream = io.StringIO()
    data = build_report(
        _snapshots(ok_report(Target(host="x.test", port=443), (leaf,))), now=NOW, source="t"
    )
    render_report_csv(data, stream)

    (row,) = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert row["subject"] == "'=cmd|' /C calc'!A0"
    assert row["issuer"] == "'@SUM(1+1)"
    assert row["days_left"] == "3"


def test_markdown_cells_cannot_open_links_html_or_new_cells() -> None:
    """Markdown metacharacters and HTML from a certificate are escaped in table cells."""
    assert md_text("[x](javascript:alert(1))") == "\\[x\\]\\(javascript:alert\\(1\\)\\)"
    assert md_text("a|b") == "a\\|b"
    assert md_text("<img src=x>") == "&lt;img src=x&gt;"
    assert md_text("line\nbreak") == "line\\\\nbreak"

    report = ok_report(Target(host="x.example.com", port=443), (_hostile_leaf(),))
    stream = io.StringIO()
    render_report_md(build_report(_snapshots(report), now=NOW, source="t"), stream)
    table_rows = [line for line in stream.getvalue().splitlines() if line.startswith("| ")]
    # header + one endpoint row: the hostile "|cell|" did not add columns
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 9 for line in table_rows)
    assert "<img" not in stream.getvalue() and "](" not in stream.getvalue()


# End to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[tuple[ServerAddress, ThrowawayPki]]:
    """A real TLS server on 127.0.0.1 whose leaf has hostile names and expires in 20 days."""
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(
        dns_names=("hostile.test",),
        common_name=HOSTILE_CN,
        organization=HOSTILE_ORG,
        not_after_utc=datetime.now(UTC) + timedelta(days=20),
    )
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        yield address, pki


def test_report_from_a_real_scan_in_every_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, hostile_server
) -> None:
    """scan --json of a real server, then report --from-scan in each format: the hostile
    names arrive escaped, the endpoint is a problem (expires in 20 days), exit 1."""
    address, pki = hostile_server
    ca = tmp_path / "root.pem"
    ca.write_bytes(pki.root.pem)
    scan_file = tmp_path / "scan.json"
    target = f"127.0.0.1:{address.port}"
    scanned = run_cli(
        capsys, "scan", target, "--sni", "hostile.test", "--ca-file", str(ca), *FAST,
        "--json", "-o", str(scan_file),
    )  # fmt: skip
    findings = json.loads(scan_file.read_text())["endpoints"][0]["findings"]
    assert scanned.code == 1, findings

    page = tmp_path / "report.html"
    result = run_cli(capsys, "report", "--from-scan", str(scan_file), "-o", str(page))
    assert result.code == 1, result.stderr
    parsed = _parse(page.read_text())
    assert HOSTILE_CN in "".join(parsed.text)
    assert not {t for t, _ in parsed.tags} & {"script", "img", "a"}

    for fmt in ("json", "csv", "md"):
        result = run_cli(capsys, "report", "--from-scan", str(scan_file), "--format", fmt)
        assert result.code == 1, (fmt, result.stderr)
        assert re.search(r"expires in (19|20) days", result.stdout), fmt
    document = json.loads(
        run_cli(capsys, "report", "--from-scan", str(scan_file), "-f", "json").stdout
    )
    assert document["endpoints"][0]["subject"] == HOSTILE_CN


def test_report_from_the_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """report over the inventory: latest observation per endpoint, tags, exit 2 for an
    expired certificate."""
    db = tmp_path / "c.db"
    now = datetime.now(UTC)
    with open_store(f"sqlite:///{db}") as store:
        target = Target(host="www.example.com", port=443)
        store.record_report(
            ok_report(
                target,
                (facts("old", not_after_utc=now + timedelta(days=90)),),
                at=now - timedelta(days=1),
            )
        )
        store.record_report(
            ok_report(target, (facts("new", not_after_utc=now - timedelta(hours=1)),), at=now),
            tags=["prod"],
        )
    result = run_cli(capsys, "report", "--db", str(db), "--format", "json")

    assert result.code == 2, result.stderr
    document = json.loads(result.stdout)
    (row,) = document["endpoints"]
    assert row["subject"] == "new"
    assert row["status"] == "critical"
    assert row["tags"] == ["prod"]
    assert document["summary"]["expired"] == 1


def test_a_broken_scan_file_is_one_line_naming_the_place(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A scan document with a wrong field: exit 64 and the file, endpoint and field named."""
    bad = tmp_path / "scan.json"
    bad.write_text(json.dumps({"schema_version": 1, "endpoints": [{"target": {"host": 1}}]}))
    result = run_cli(capsys, "report", "--from-scan", str(bad))

    assert result.code == 64
    assert result.stderr.count("\n") == 1
    assert str(bad) in result.stderr and "endpoints[0]" in result.stderr


@given(st.text(max_size=60))
@example("=1+1|[a](b)<i>\\")
def test_markdown_cell_text_never_opens_markup(text: str) -> None:
    """Any outside text: no unescaped pipe, bracket, backtick or angle bracket survives."""
    cell = md_text(text)
    unescaped = re.findall(r"(?<!\\)(?:\\\\)*[|\[\]`*_]", cell)
    assert unescaped == []
    assert "<" not in cell and ">" not in cell
    assert "\n" not in cell and "\r" not in cell
