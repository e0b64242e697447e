"""Outside text made safe to show: escapes for hidden characters, no markup, no formulas."""

from __future__ import annotations

import io
import json
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st
from rich.console import Console

from certvigil.output.safe_text import cell, csv_cell, json_visible, markup, visible

_HIDDEN = {"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"}


def test_visible_escapes_controls_bidi_and_invisible_characters() -> None:
    """ESC, NUL, newline, DEL, C1, U+202E, zero-width space and BOM become escapes."""
    text = "a\x1b[31mb\x00c\nd\x7fe\x9bf\u202eg\u200bh\ufeffi\u2066j\u2028k\U000e0041"
    assert visible(text) == (
        "a\\x1b[31mb\\x00c\\nd\\x7fe\\x9bf\\u202eg\\u200bh\\ufeffi\\u2066j\\u2028k\\U000e0041"
    )


def test_visible_keeps_printable_text_and_non_ascii_letters() -> None:
    """Names in any script, spaces and backslashes stay as they are."""
    for text in ("www.example.test", "Bücher GmbH", "日本語 CA", "CN=a\\,b", "a\u00a0b", ""):
        assert visible(text) == text


@given(st.text())
@example("\x1b]8;;https://evil.test\x07link\x1b]8;;\x07")
@example("\ud800")
def test_visible_leaves_no_hidden_character(text: str) -> None:
    """Whatever the input, the result holds no control, format or unassigned character."""
    shown = visible(text)
    assert not [c for c in shown if unicodedata.category(c) in _HIDDEN]


def test_cell_is_never_read_as_markup() -> None:
    """A cell of ``[/bold]`` and ``[link=…]`` prints those characters, not their effect."""
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    console.print(cell("[/bold][link=https://evil.test]x[/link]\x1b[2J"))
    shown = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[/bold][link=https://evil.test]x[/link]\\x1b[2J" in shown
    assert "\x1b]8;" not in shown


def test_markup_escapes_brackets_inside_a_markup_string() -> None:
    """Outside text placed in markup renders literally, brackets included."""
    console = Console(file=io.StringIO(), width=80, no_color=True)
    outside = "[/bold][red]x\\"
    console.print(f"[bold]{markup(outside)}[/bold]")
    assert console.file.getvalue() == "[/bold][red]x\\\n"  # type: ignore[attr-defined]


@given(st.text())
@example("\u202e\x9b\U000e0041\x1b")
def test_json_visible_is_printable_and_decodes_to_the_same_value(text: str) -> None:
    """Escaping hidden characters keeps the JSON document's meaning exactly."""
    document = json_visible(json.dumps({"v": text}, ensure_ascii=False))
    assert not [c for c in document if unicodedata.category(c) in _HIDDEN]
    assert json.loads(document) == {"v": text}


def test_csv_cell_defuses_spreadsheet_formulas() -> None:
    """Cells starting with = + - @ tab or CR get a leading quote; others are untouched."""
    for formula in ("=cmd|' /C calc'!A0", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1"):
        assert csv_cell(formula) == "'" + formula
    for plain in ("CN=www.example.test", "www.example.test", "", "1-2"):
        assert csv_cell(plain) == plain
