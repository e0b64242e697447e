"""The report as JSON, CSV and Markdown.

CSV cells from outside go through ``safe_text.csv_cell`` (a leading ``= + - @``, tab
or carriage return gets a ``'``, so a spreadsheet does not run a certificate's
subject as a formula). Markdown escapes every character that could start markup,
a link, an image, raw HTML or a table cell, and shows control characters as escapes.
"""

from __future__ import annotations

import csv
import html
import re
from typing import Any, TextIO

from certvigil.output.json_doc import dumps, utc_text
from certvigil.output.report_data import ReportData, ReportRow
from certvigil.output.safe_text import safe_csv_row
from certvigil.text_escape import visible

REPORT_SCHEMA = "certvigil.report/1"
"""The ``schema`` of the JSON report; raised when a field changes meaning."""

CSV_COLUMNS = (
    "status",
    "endpoint",
    "problems",
    "subject",
    "issuer",
    "not_after_utc",
    "days_left",
    "grade",
    "protocol",
    "tags",
    "observed_at_utc",
    "sha256",
)
_CSV_NUMBERS = frozenset({"days_left"})


def _row_json(row: ReportRow) -> dict[str, Any]:
    return {
        "endpoint": row.endpoint,
        "status": row.status,
        "problems": list(row.problems),
        "subject": row.subject,
        "issuer": row.issuer,
        "not_after_utc": utc_text(row.not_after_utc) if row.not_after_utc else None,
        "days_left": row.days_left,
        "grade": row.grade,
        "protocol": row.protocol,
        "tags": list(row.tags),
        "observed_at_utc": utc_text(row.observed_at_utc),
        "sha256": row.sha256_hex,
    }


def render_report_json(data: ReportData, stream: TextIO) -> None:
    """One JSON document: summary, chart data and every endpoint, problems first."""
    document = {
        "schema": REPORT_SCHEMA,
        "generated_at_utc": utc_text(data.generated_at_utc),
        "source": data.source,
        "summary": {
            "endpoints": len(data.rows),
            "problems": len(data.problems),
            "expired": data.expired,
            "by_status": dict(data.counts),
        },
        "expiry_by_week": list(data.expiry_by_week),
        "expiring_later": data.expiring_later,
        "grades": dict(data.grades),
        "issuers": [{"issuer": name, "leaves": count} for name, count in data.issuers],
        "endpoints": [_row_json(row) for row in data.rows],
    }
    stream.write(dumps(document) + "\n")


def _csv_values(row: ReportRow) -> dict[str, str]:
    return {
        "status": row.status,
        "endpoint": row.endpoint,
        "problems": "; ".join(row.problems),
        "subject": row.subject or "",
        "issuer": row.issuer or "",
        "not_after_utc": utc_text(row.not_after_utc) if row.not_after_utc else "",
        "days_left": "" if row.days_left is None else str(row.days_left),
        "grade": row.grade or "",
        "protocol": row.protocol or "",
        "tags": " ".join(row.tags),
        "observed_at_utc": utc_text(row.observed_at_utc),
        "sha256": row.sha256_hex or "",
    }


def render_report_csv(data: ReportData, stream: TextIO) -> None:
    """One CSV row per endpoint, problems first, safe to open in a spreadsheet."""
    writer = csv.DictWriter(stream, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in data.rows:
        values = {key: visible(value) for key, value in _csv_values(row).items()}
        writer.writerow(safe_csv_row(values, numbers=_CSV_NUMBERS))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~])")


def md_text(value: str) -> str:
    """Outside text for a Markdown table cell: shown as written, never as markup.

    Control characters become escapes, ``< > &`` HTML entities (no raw HTML), and
    every Markdown punctuation character (``| [ ] ( ) * _`` and the rest) a
    backslash escape, so no text can open a link, an image or a new cell.
    """
    return _MD_SPECIAL.sub(r"\\\1", html.escape(visible(value), quote=False))


def render_report_md(data: ReportData, stream: TextIO) -> None:
    """A Markdown report: summary, problems table, then everything else."""
    counts = dict(data.counts)
    stamp = data.generated_at_utc.strftime("%Y-%m-%d %H:%M UTC")
    stream.write(
        f"# TLS certificate report\n\n{stamp}, {md_text(data.source)}\n\n"
        f"- endpoints: {len(data.rows)}\n- critical: {counts.get('critical', 0)}\n"
        f"- warning: {counts.get('warning', 0)}\n- not observed: {counts.get('unknown', 0)}\n"
        f"- expired: {data.expired}\n\n"
    )

    def table(rows: tuple[ReportRow, ...]) -> None:
        stream.write(
            "| status | endpoint | problems | subject | issuer | expires | days | grade |\n"
        )
        stream.write("|---|---|---|---|---|---|--:|---|\n")
        for row in rows:
            cells = (
                row.status,
                md_text(row.endpoint),
                "<br>".join(md_text(p) for p in row.problems) or "-",
                md_text(row.subject) if row.subject else "-",
                md_text(row.issuer) if row.issuer else "-",
                row.not_after_utc.strftime("%Y-%m-%d") if row.not_after_utc else "-",
                "-" if row.days_left is None else str(row.days_left),
                md_text(row.grade) if row.grade else "-",
            )
            stream.write("| " + " | ".join(cells) + " |\n")
        stream.write("\n")

    problems = data.problems
    stream.write(f"## Problems ({len(problems)})\n\n")
    if problems:
        table(problems)
    else:
        stream.write("None.\n\n")
    others = tuple(row for row in data.rows if not row.has_problem)
    stream.write(f"## Everything else ({len(others)})\n\n")
    if others:
        table(others)
    grades = ", ".join(f"{md_text(g)}: {n}" for g, n in data.grades) or "-"
    issuers = ", ".join(f"{md_text(i)}: {n}" for i, n in data.issuers) or "-"
    stream.write(f"## Grades\n\n{grades}\n\n## Issuers\n\n{issuers}\n")
