"""Outside text made safe to show: no markup, no control or invisible characters.

Every string that comes from a certificate, a server, a DNS answer, a target file or a
configuration is data. Written to a terminal as it is, it can move the cursor, change
colours, set the window title or hide a link (ESC, C1 controls), reorder what is shown
(bidi overrides such as U+202E) or hide characters (zero-width spaces, U+FEFF); passed
to rich as a string, ``[/bold]`` or ``[link=…]`` in it is read as markup.

:func:`visible` replaces each such character with a backslash escape that names it
(``\\x1b``, ``\\n``, ``\\u202e``, ``\\U000e0041``), so what was sent can still be read;
:func:`cell` and :func:`markup` wrap that for rich. Backslashes themselves are kept as
they are (a distinguished name escapes with them). JSON output stays exact: the JSON
encoder escapes the C0 controls itself, and :func:`json_visible` escapes the rest as
``\\uXXXX`` sequences, which decode to the same characters. CSV cells go through
:func:`csv_cell`, which keeps the text exact but for formula injection.
"""

from __future__ import annotations

import re

from rich.markup import escape as _escape_markup
from rich.text import Text

from certvigil.text_escape import is_hidden, visible

__all__ = ["cell", "csv_cell", "is_hidden", "json_visible", "markup", "visible"]


def cell(text: str | None, style: str = "") -> Text:
    """A rich ``Text`` of outside text: shown literally, never read as markup.

    Args:
        text: The outside text (``None`` shows as nothing).
        style: A rich style for the whole cell.

    Returns:
        The text, made :func:`visible`, as a ``Text`` (which rich does not parse).
    """
    return Text(visible(text or ""), style=style)


def markup(text: str) -> str:
    """Outside text to place inside a rich markup string: visible, brackets escaped.

    Args:
        text: The outside text.

    Returns:
        Markup that renders as exactly :func:`visible` of ``text``.
    """
    return _escape_markup(visible(text))


def _json_escape(char: str) -> str:
    point = ord(char)
    if point < 0x10000:
        return f"\\u{point:04x}"
    point -= 0x10000
    return f"\\u{0xD800 + (point >> 10):04x}\\u{0xDC00 + (point & 0x3FF):04x}"


def json_visible(document: str) -> str:
    """Serialised JSON with every hidden character left as a ``\\uXXXX`` escape.

    ``json.dumps(..., ensure_ascii=False)`` writes C1 controls, bidi controls and the
    like as they are; a JSON log or document read in a terminal would then act on
    them. Outside strings, these characters can only stand inside JSON strings, where
    the escape decodes to the same character: the document means exactly the same.

    Args:
        document: A JSON text.

    Returns:
        The same document, safe to print.
    """
    if document.isprintable():
        return document
    return "".join(_json_escape(c) if is_hidden(c) else c for c in document)


_FORMULA_START = re.compile(r"[=+\-@\t\r]")


def csv_cell(value: str) -> str:
    """A CSV cell that a spreadsheet will not run as a formula.

    A cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read
    as a formula by Excel, LibreOffice and Google Sheets (``=HYPERLINK(…)``,
    ``=cmd|' /C calc'!A0``). Such a cell gets a leading ``'``, as OWASP advises; every
    other cell is returned unchanged. Only text from outside goes through here
    (numbers such as ``-3`` days are written by certvigil and left alone).

    Args:
        value: The cell's text.

    Returns:
        ``value``, or ``'`` + ``value`` when it would start a formula.
    """
    return "'" + value if value and _FORMULA_START.match(value) else value


def safe_csv_row(row: dict[str, str], *, numbers: frozenset[str] = frozenset()) -> dict[str, str]:
    """Every cell of a CSV row through :func:`csv_cell`, except the named number columns.

    Args:
        row: The cells, by column name.
        numbers: Columns written by certvigil as numbers (``-3`` days is not a formula).

    Returns:
        A new row.
    """
    return {key: value if key in numbers else csv_cell(value) for key, value in row.items()}
