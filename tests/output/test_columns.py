"""Fitting a table to the screen: fixed order of what gives way, nothing rigid broken."""

from __future__ import annotations

import io

from rich.console import Console
from rich.text import Text

from certvigil.output.columns import Column, Fit, TableStyle, drop, fit_table, shorten


def _render(width: int) -> str:
    columns = [
        Column(header="Endpoint", cells=[Text("very-long-name.example.test:24400")]),
        Column(header="Subject", cells=[Text("a subject that is long")], fit=Fit.CLIP),
        Column(
            header="Expires (UTC)",
            cells=[Text("2026-12-24 10:00")],
            short_header="Expires",
            short_cells=[Text("2026-12-24")],
        ),
        Column(header="Days", cells=[Text("-3")], justify="right"),
        Column(header="Findings", cells=[Text("expired, untrusted_root")], fit=Fit.WRAP),
    ]
    table = fit_table(
        columns,
        width=width,
        steps=(
            drop("Subject"),
            shorten("Expires (UTC)"),
            drop("Expires (UTC)"),
            drop("Findings"),
        ),
        style=TableStyle(),
    )
    console = Console(file=io.StringIO(), width=width, no_color=True)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def test_everything_shows_when_there_is_room() -> None:
    """At 120 columns every column is there in full."""
    text = _render(120)
    for part in ("a subject that is long", "2026-12-24 10:00", "expired, untrusted_root"):
        assert part in text


def test_columns_give_way_in_order_and_a_short_form_can_still_be_dropped() -> None:
    """Narrower, the subject goes, then the time of expiry, the date, then the findings."""
    at_90 = _render(90)
    assert "Subject" not in at_90 and "2026-12-24 10:00" in at_90
    at_76 = _render(76)
    assert "2026-12-24" in at_76 and "10:00" not in at_76
    at_65 = _render(65)
    assert "Expires" not in at_65 and "2026-12-24" not in at_65
    assert "expired," in at_65
    at_60 = _render(60)
    assert "Findings" not in at_60 and "Days" in at_60


def test_rigid_cells_are_never_broken_and_lines_fit() -> None:
    """At every width the endpoint and the day count stay whole, and no line overflows."""
    for width in range(50, 121, 5):
        text = _render(width)
        assert "very-long-name.example.test:24400" in text, width
        assert " -3 " in text, width
        assert max(len(line) for line in text.splitlines()) <= width, width
