"""``certvigil scan ... | head``: a reader that closes stdout ends the scan quietly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from certvigil.demo.servers import closed_port


@pytest.mark.parametrize(
    ("flags", "expected_code"),
    [
        # The table is written once every endpoint is judged: the results' code.
        ((), 3),
        # CSV and JSON stream from the first byte: the scan stops at the closed pipe,
        # before any endpoint was judged, so nothing calls for a non-zero code.
        (("--csv",), 0),
        (("--json",), 0),
    ],
)
def test_closed_stdout_ends_quietly_with_the_code_of_what_was_judged(
    flags: tuple[str, ...], expected_code: int
) -> None:
    """A reader gone before any output: no traceback, no broken-pipe noise, not typer's 1."""
    with closed_port() as address:
        process = subprocess.Popen(
            [sys.executable, "-m", "certvigil", "scan", address.endpoint, *flags,
             "--retries", "0", "--connect-timeout", "2", "--no-progress"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1"},
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before anything is written
        with process.stderr:
            stderr = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert code == expected_code, stderr
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr
    assert "Exception ignored" not in stderr
