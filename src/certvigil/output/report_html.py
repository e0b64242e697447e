"""The HTML report: one self-contained file, inline CSS and SVG charts, problems first.

Nothing is fetched from anywhere: no scripts, fonts, images or links, and a
Content-Security-Policy that forbids loading any. Every value from outside
(certificate names, findings, labels, host names) goes through :func:`_text`:
invisible and control characters are shown as escapes, then the text is
HTML-escaped, so a hostile certificate field is shown, never run. The page reads on
a phone (the table becomes cards under 720 px) and prints (no colours needed, rows
not split across pages).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TextIO

from certvigil.output.report_data import WEEKS, ReportData, ReportRow
from certvigil.text_escape import visible

_CSS = """
:root{--ink:#1d2430;--muted:#5b6472;--line:#d9dee5;--crit:#b3261e;--warn:#a15c00;
--ok:#1e6b35;--unk:#5b4b8a;--bar:#3a6ea5}
*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);
margin:0 auto;padding:1rem;max-width:1200px}
h1{font-size:1.5rem;margin:.2rem 0}h2{font-size:1.15rem;margin:1.6rem 0 .5rem;
border-bottom:1px solid var(--line);padding-bottom:.2rem}
.meta{color:var(--muted);font-size:.9rem}
.tiles{display:flex;flex-wrap:wrap;gap:.5rem;margin:.8rem 0}
.tile{border:1px solid var(--line);border-radius:6px;padding:.4rem .8rem;min-width:7rem}
.tile b{display:block;font-size:1.4rem}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem}
figure{margin:0;border:1px solid var(--line);border-radius:6px;padding:.5rem}
figcaption{font-weight:600;margin-bottom:.3rem}
svg{width:100%;height:auto;display:block}
svg text{font:11px system-ui,sans-serif;fill:var(--ink)}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);
vertical-align:top;overflow-wrap:break-word}
caption{text-align:left;caption-side:top;padding:.2rem 0}
th{background:#f3f5f8}
.s{font-weight:700;text-transform:uppercase;font-size:.75rem;white-space:nowrap}
.critical{color:var(--crit)}.warning{color:var(--warn)}.ok,.info{color:var(--ok)}
.unknown{color:var(--unk)}
ul.p{margin:0;padding-left:1.1rem}
.num{text-align:right;white-space:nowrap}
@media (max-width:720px){
 table,caption,thead,tbody,tr,th,td{display:block}thead{display:none}
 tr{border:1px solid var(--line);border-radius:6px;margin:.6rem 0;padding:.3rem}
 td{border:0;padding:.15rem .3rem}
 td::before{content:attr(data-label) ": ";font-weight:600;color:var(--muted)}
 .num{text-align:left}
}
@media print{
 body{max-width:none;padding:0;font-size:11px}
 .charts{grid-template-columns:1fr 1fr}
 figure,tr{break-inside:avoid}
 thead{display:table-header-group}
 .s::after{content:""}
}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _text(value: object) -> str:
    """Outside text made visible, then HTML-escaped (quotes too, for attributes)."""
    return html.escape(visible(str(value)), quote=True)


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d") if value is not None else "-"


def _bar_chart(
    bars: Sequence[tuple[str, int]], *, title: str, label_every: int = 1, width: int = 420
) -> str:
    """A vertical bar chart as inline SVG, with a text table for screen readers."""
    height, top, bottom, left = 190, 14, 44, 40
    peak = max((count for _, count in bars), default=0) or 1
    slot = (width - left - 6) / max(len(bars), 1)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_text(title)}">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" '
        'stroke="#999" stroke-width="1"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 4}" y="{height - bottom}" text-anchor="end">0</text>',
    ]
    usable = height - top - bottom
    for index, (label, count) in enumerate(bars):
        bar_h = usable * count / peak
        x = left + index * slot + slot * 0.1
        y = height - bottom - bar_h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{bar_h:.1f}" '
            f'fill="var(--bar)"><title>{_text(label)}: {count}</title></rect>'
        )
        if count and len(bars) <= 20:
            parts.append(
                f'<text x="{x + slot * 0.4:.1f}" y="{y - 2:.1f}" '
                f'text-anchor="middle">{count}</text>'
            )
        if index % label_every == 0:
            lx, ly = x + slot * 0.4, height - bottom + 12
            parts.append(
                f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="end" '
                f'transform="rotate(-35 {lx:.1f} {ly:.1f})">{_text(label[:18])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _hbar_chart(bars: Sequence[tuple[str, int]], *, title: str, width: int = 420) -> str:
    """A horizontal bar chart (long labels such as issuer names) as inline SVG."""
    row_h, label_w = 22, 170
    height = max(len(bars), 1) * row_h + 8
    peak = max((count for _, count in bars), default=0) or 1
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="{_text(title)}">']
    for index, (label, count) in enumerate(bars):
        y = 4 + index * row_h
        bar_w = (width - label_w - 50) * count / peak
        shown = label if len(label) <= 26 else label[:25] + "\u2026"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end">{_text(shown)}'
            f"<title>{_text(label)}</title></text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{bar_w:.1f}" height="{row_h - 6}" '
            f'fill="var(--bar)"/>'
            f'<text x="{label_w + bar_w + 4:.1f}" y="{y + 15}">{count}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _row(row: ReportRow) -> str:
    problems = (
        '<ul class="p">' + "".join(f"<li>{_text(p)}</li>" for p in row.problems) + "</ul>"
        if row.problems
        else "-"
    )
    tags = ", ".join(row.tags)
    days = "-" if row.days_left is None else str(row.days_left)
    return (
        "<tr>"
        f'<td data-label="Status"><span class="s {_text(row.status)}">'
        f"{_text(row.status)}</span></td>"
        f'<td data-label="Endpoint">{_text(row.endpoint)}'
        + (f'<br><span class="meta">{_text(tags)}</span>' if tags else "")
        + "</td>"
        f'<td data-label="Problems">{problems}</td>'
        f'<td data-label="Subject">{_text(row.subject or "-")}</td>'
        f'<td data-label="Issuer">{_text(row.issuer or "-")}</td>'
        f'<td data-label="Expires" class="num">{_date(row.not_after_utc)}</td>'
        f'<td data-label="Days" class="num">{days}</td>'
        f'<td data-label="Grade">{_text(row.grade or "-")}</td>'
        f'<td data-label="Protocol">{_text(row.protocol or "-")}</td>'
        "</tr>"
    )


def _table(rows: Sequence[ReportRow], caption: str) -> str:
    head = "".join(
        f"<th>{name}</th>"
        for name in (
            "Status",
            "Endpoint",
            "Problems",
            "Subject",
            "Issuer",
            "Expires",
            "Days",
            "Grade",
            "Protocol",
        )
    )
    body = "".join(_row(row) for row in rows)
    return (
        f"<table><caption class=meta>{_text(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )


def render_report_html(data: ReportData, stream: TextIO) -> None:
    """Write the HTML report to ``stream``."""
    now = data.generated_at_utc
    week_labels = [
        ("expired", data.expired),
        *(
            ((now + timedelta(weeks=week)).strftime("%d %b"), count)
            for week, count in enumerate(data.expiry_by_week)
        ),
    ]
    problems = data.problems
    others = tuple(row for row in data.rows if not row.has_problem)
    counts = dict(data.counts)
    tiles = "".join(
        f'<div class="tile"><b class="{cls}">{value}</b>{label}</div>'
        for cls, value, label in (
            ("", len(data.rows), "endpoints"),
            ("critical", counts.get("critical", 0), "critical"),
            ("warning", counts.get("warning", 0), "warning"),
            ("unknown", counts.get("unknown", 0), "not observed"),
            ("critical", data.expired, "expired"),
            ("ok", counts.get("ok", 0) + counts.get("info", 0), "fine"),
        )
    )
    stamp = now.strftime("%Y-%m-%d %H:%M UTC")
    stream.write(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>certvigil report {stamp}</title><style>{_CSS}</style></head><body>"
        f"<h1>TLS certificate report</h1>"
        f'<p class="meta">{stamp} &middot; {_text(data.source)}</p>'
        f'<div class="tiles">{tiles}</div>'
    )
    stream.write(f"<h2>Problems ({len(problems)})</h2>")
    if problems:
        stream.write(_table(problems, "Worst first, then soonest expiry."))
    else:
        stream.write("<p>None: every endpoint answered and nothing needs attention.</p>")
    stream.write(
        '<h2>Charts</h2><div class="charts">'
        f"<figure><figcaption>Expiry timeline: leaves expiring per week, next {WEEKS} weeks"
        f"</figcaption>{_bar_chart(week_labels, title='Expiry timeline', label_every=4)}"
        f'<p class="meta">{data.expiring_later} later than {WEEKS} weeks.</p></figure>'
        f"<figure><figcaption>Grade spread</figcaption>"
        f"{_bar_chart(list(data.grades), title='Grade spread')}</figure>"
        f"<figure><figcaption>Issuers</figcaption>"
        f"{_hbar_chart(list(data.issuers), title='Issuers')}</figure>"
        "</div>"
    )
    stream.write(f"<h2>Everything else ({len(others)})</h2>")
    if others:
        stream.write(_table(others, "Soonest expiry first."))
    stream.write(
        '<p class="meta">Made by certvigil. Days are whole days from the time above; '
        "a grade needs a deep scan (certvigil scan --deep).</p></body></html>\n"
    )
