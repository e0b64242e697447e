"""Every command's ``--help`` reads well in an 80-column terminal.

Each command and group is rendered through the real entry point with ``COLUMNS=80``:
no option name may be cut, no line may be wider than the screen, no reStructuredText
markup may show, and every command has examples and grouped options.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise

import click
import pytest
import typer
from rich.cells import cell_len

from certvigil.cli.app import app, register_commands
from tests.cli.scan_lab import run_cli


def _walk(
    command: click.Command, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    # typer carries its own copy of click: a group is whatever has sub-commands.
    subcommands: dict[str, click.Command] = getattr(command, "commands", {})
    for name, sub in sorted(subcommands.items()):
        yield from _walk(sub, (*path, name))


def _commands() -> list[tuple[tuple[str, ...], click.Command]]:
    register_commands([])
    return list(_walk(typer.main.get_command(app), ()))


COMMANDS = _commands()
LEAVES = [(path, c) for path, c in COMMANDS if path and not getattr(c, "commands", None)]
COMMAND_IDS = [" ".join(path) or "certvigil" for path, _ in COMMANDS]
LEAF_IDS = [" ".join(path) for path, _ in LEAVES]


def _help(capsys: pytest.CaptureFixture[str], path: tuple[str, ...]) -> str:
    result = run_cli(capsys, *path, "--help")
    assert result.code == 0, result.stderr
    return result.stdout


@pytest.fixture(autouse=True)
def narrow_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("TERMINAL_WIDTH", raising=False)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_help_shows_every_option_name_whole_within_80_columns(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...], command: click.Command
) -> None:
    """Each option's names appear whole; nothing is cut with an ellipsis or overflows."""
    text = _help(capsys, path)
    for param in command.params:
        for name in (*param.opts, *param.secondary_opts):
            if name.startswith("--"):
                assert name in text, f"{name} cut or missing in {' '.join(path)} --help"
    assert "…" not in text
    too_wide = [line for line in text.splitlines() if cell_len(line) > 80]
    assert too_wide == []


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_help_shows_no_restructuredtext_markup(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...], command: click.Command
) -> None:
    """Help texts are plain words: no double backquotes, no stray backslash escapes."""
    text = _help(capsys, path)
    assert "``" not in text
    assert "\\[" not in text


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=LEAF_IDS)
def test_each_command_has_examples(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...], command: click.Command
) -> None:
    """Each command ends its help with examples that use the command itself."""
    text = _help(capsys, path)
    examples = text[text.index("Examples") :]
    assert f"certvigil {' '.join(path)}" in examples


def test_scan_options_are_grouped(capsys: pytest.CaptureFixture[str]) -> None:
    """scan's options stand in panels by purpose, in a stable order."""
    text = _help(capsys, ("scan",))
    panels = [line.split("─")[1].strip() for line in text.splitlines() if line.startswith("╭─")]
    assert panels[:1] == ["Arguments"]
    assert {"Targets", "Connection", "Checks", "Trust", "Output"} <= set(panels)
    assert "--allow-large-cidr" in text


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_summaries_are_one_line_in_the_source(
    path: tuple[str, ...], command: click.Command
) -> None:
    """A command's first paragraph, shown in its group's command list, is one line."""
    summary = (command.help or "").strip().split("\n\n")[0]
    assert summary and "\n" not in summary


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_descriptions_wrap_to_the_screen_not_to_the_source(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...], command: click.Command
) -> None:
    """A description's lines break where the screen ends, not where the docstring did."""
    lines = _help(capsys, path).splitlines()
    start = next(i for i, line in enumerate(lines) if "Usage:" in line) + 1
    end = next(i for i, line in enumerate(lines) if line.startswith("╭") or "Examples" in line)
    text = [line.strip() for line in lines[start:end]]
    for line, following in pairwise(text):
        if line and following:
            joined = len(line) + 1 + len(following.split()[0])
            assert joined > 78, f"{line!r} was broken before {following!r}"
