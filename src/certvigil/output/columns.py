"""Tables that fit the terminal: columns sized here, dropped or shortened in a fixed order.

rich, given a table wider than the screen, squeezes every column alike: an endpoint
comes out as ``good.zoo`` / ``.test:24`` / ``400`` and a header as ``Finding`` / ``s``.
Here each column says what it may give up:

* a *rigid* column (a date, a number, a fingerprint, a verdict) is never broken: it is
  as wide as its widest cell;
* a *clipped* column (a subject, an issuer, a summary) is cut with ``…`` down to its
  minimum width;
* a *wrapped* column (a list of finding codes, a sentence, an endpoint with its
  ``(sni …)`` note) wraps between words, down to its minimum width, and never narrower
  than its longest word.

When even the minimum widths do not fit, the table's *steps* are applied in their fixed
order, one at a time, until they do: each step drops a column or swaps it for its
short form (a date without its time). docs/output.md lists each table's order. Only a
screen narrower than the columns that never give way leaves rich to squeeze them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, TextIO

from rich import box as boxes
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

WIDTH_WHEN_NOT_A_TERMINAL = 200
"""The width used for a pipe or a file, unless ``COLUMNS`` says otherwise."""


class Fit(StrEnum):
    """How a column may shrink."""

    RIGID = "rigid"
    CLIP = "clip"
    WRAP = "wrap"


@dataclass(slots=True, kw_only=True)
class Column:
    """One column's header, cells and how it may shrink.

    Attributes:
        header: The heading.
        cells: One cell per row.
        fit: Rigid, clipped with an ellipsis, or wrapped between words.
        min_width: The narrowest a clipped or wrapped column may become (never
            narrower than its header).
        justify: ``"left"`` or ``"right"``.
        short_header: The heading of the short form (see ``short_cells``).
        short_cells: The cells of the short form, used after a ``shorten`` step.
    """

    header: str
    cells: list[Text] = field(default_factory=list)
    fit: Fit = Fit.RIGID
    min_width: int = 8
    justify: Literal["left", "right"] = "left"
    short_header: str | None = None
    short_cells: list[Text] | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One way to make a table narrower: drop a column or use its short form."""

    action: Literal["drop", "shorten"]
    header: str


def drop(header: str) -> Step:
    """A step that leaves out the column headed ``header``."""
    return Step("drop", header)


def shorten(header: str) -> Step:
    """A step that swaps the column headed ``header`` for its short form."""
    return Step("shorten", header)


def _text_width(text: Text) -> int:
    return max((cell_len(line) for line in text.plain.split("\n")), default=0)


def _natural(column: Column) -> int:
    return max([cell_len(column.header), *(_text_width(c) for c in column.cells)])


def _longest_word(column: Column) -> int:
    words = [word for c in column.cells for word in c.plain.split()]
    return max((cell_len(word) for word in words), default=0)


def _minimum(column: Column) -> int:
    natural = _natural(column)
    if column.fit is Fit.RIGID:
        return natural
    floor = max(column.min_width, cell_len(column.header))
    if column.fit is Fit.WRAP:
        # Wrapping happens between words only: no word is ever broken.
        floor = max(floor, _longest_word(column))
    return min(natural, floor)


@dataclass(frozen=True, slots=True, kw_only=True)
class TableStyle:
    """The frame around the cells, which takes width too.

    Attributes:
        box: Draw lines around and between the columns.
        show_edge: Draw the outer frame (with ``box``).
        pad_edge: Pad the outer sides of the first and last columns.
        header_style: The headings' style.
    """

    box: bool = True
    show_edge: bool = True
    pad_edge: bool = True
    header_style: str = "bold"

    def overhead(self, count: int) -> int:
        """The width of frame and padding around ``count`` columns."""
        if count == 0:
            return 0
        padding = 2 * count - (0 if self.pad_edge else 2)
        lines = 0
        if self.box:
            lines = count - 1 + (2 if self.show_edge else 0)
        return max(padding, 0) + lines


def fit_table(
    columns: Sequence[Column],
    *,
    width: int,
    steps: Sequence[Step] = (),
    style: TableStyle = TableStyle(),
) -> Table:
    """A rich table of ``columns`` no wider than ``width`` where that can be done.

    Args:
        columns: The columns, in display order.
        width: The screen's width in cells.
        steps: What to give up, first to last, while the minimum widths do not fit.
        style: The frame.

    Returns:
        A table whose every column has a fixed width.
    """
    shown = list(columns)
    # Each column's widths are measured once (a table may have thousands of rows).
    measured: dict[int, tuple[int, int]] = {}

    def minimum(column: Column) -> int:
        if id(column) not in measured:
            measured[id(column)] = (_minimum(column), _natural(column))
        return measured[id(column)][0]

    def natural(column: Column) -> int:
        minimum(column)
        return measured[id(column)][1]

    # A step names a column by its full header, also once it is in its short form.
    names = [c.header for c in shown]
    for step in steps:
        if sum(minimum(c) for c in shown) + style.overhead(len(shown)) <= width:
            break
        for index, column in enumerate(shown):
            if names[index] != step.header:
                continue
            if step.action == "drop":
                del shown[index]
                del names[index]
            elif column.short_cells is not None:
                shown[index] = Column(
                    header=column.short_header or column.header,
                    cells=column.short_cells,
                    fit=column.fit,
                    min_width=column.min_width,
                    justify=column.justify,
                )
            break
    widths = [minimum(c) for c in shown]
    spare = width - style.overhead(len(shown)) - sum(widths)
    # Share the room left among the columns that shrank, a cell at a time, always to
    # the one that still lacks the most, up to what each needs.
    lacking = {i: natural(c) - widths[i] for i, c in enumerate(shown)}
    while spare > 0 and lacking:
        neediest = max(lacking, key=lambda i: lacking[i])
        if lacking[neediest] <= 0:
            break
        widths[neediest] += 1
        lacking[neediest] -= 1
        spare -= 1
    table = Table(
        box=boxes.HEAVY_HEAD if style.box else None,
        show_edge=style.show_edge,
        pad_edge=style.pad_edge,
        header_style=style.header_style,
    )
    for column, column_width in zip(shown, widths, strict=True):
        table.add_column(
            column.header,
            width=max(column_width, 1),
            justify=column.justify,
            no_wrap=column.fit is not Fit.WRAP,
            overflow="fold" if column.fit is Fit.WRAP else "ellipsis",
        )
    for row in zip(*(c.cells for c in shown), strict=True):
        table.add_row(*row)
    return table


class _ResultsConsole(Console):
    """A console that lets a closed pipe surface as ``BrokenPipeError``.

    rich's own handling exits with status 1; the command decides the status instead.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _columns_from_environment() -> int | None:
    try:
        value = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def results_console(stream: TextIO, *, color: bool | None) -> Console:
    """The console that prints tables to ``stream``.

    A terminal gives its own width. A pipe or a file has none: the table is as wide
    as ``COLUMNS`` says when it is set, else 200 cells, so that rows stay on one line
    where they fit.

    Args:
        stream: stdout or an ``--output`` file.
        color: Force colour on (True) or off (False); ``None`` asks the stream.

    Returns:
        A console without highlighting or emoji codes.
    """
    console = _ResultsConsole(
        file=stream,
        no_color=color is False,
        force_terminal=color or None,
        highlight=False,
        emoji=False,
    )
    if not console.is_terminal:
        console = _ResultsConsole(
            file=stream,
            width=_columns_from_environment() or WIDTH_WHEN_NOT_A_TERMINAL,
            no_color=True,
            highlight=False,
            emoji=False,
        )
    return console
