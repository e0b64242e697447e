"""Target files on the command line: one target per line, and a file without targets."""

from __future__ import annotations

from pathlib import Path

import pytest

from certvigil.cli.app import main
from certvigil.cli.exitcodes import ExitCode


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


@pytest.mark.parametrize("text", ["", "# hosts we scan\n\n   # none yet\n"])
def test_an_empty_or_comment_only_target_file_exits_64(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """scan -f FILE with no target in FILE is a usage error (64) naming the file."""
    path = tmp_path / "targets.txt"
    path.write_text(text, encoding="utf-8")
    code, _out, err = _run(["scan", "-f", str(path), "--no-progress"], capsys)
    assert code == ExitCode.USAGE
    assert f"error: {path}: no targets in the file" in err


def test_a_line_with_white_space_is_one_error_and_nothing_is_resolved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``exa mple.com`` is reported with file and line and no endpoint is scanned (the
    words were once scanned as the names ``exa`` and ``mple.com``)."""
    path = tmp_path / "targets.txt"
    path.write_text("exa mple.com\n", encoding="utf-8")
    code, _out, err = _run(["scan", "-f", str(path), "--no-progress"], capsys)
    assert code == ExitCode.USAGE
    assert f'error: {path}:1: "exa mple.com": contains white space' in err
    assert "0 endpoints: 1 malformed target" in err
