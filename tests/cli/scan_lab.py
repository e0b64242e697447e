"""Helpers for command-line tests: run ``main()`` in-process or as a process, and a PKI."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from certvigil.cli.app import main
from certvigil.demo.pki import IssuedCert, ThrowawayPki


@dataclass(frozen=True, slots=True)
class Result:
    """What a command-line run produced."""

    code: int
    stdout: str
    stderr: str


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run ``certvigil ARGS`` in this process through the real entry point."""
    capsys.readouterr()
    try:
        main(list(args))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    else:  # pragma: no cover - main always exits
        code = -1
    captured = capsys.readouterr()
    return Result(code=code, stdout=captured.out, stderr=captured.err)


def run_process(*args: str, stdin: str | None = None, timeout_s: float = 60) -> Result:
    """Run ``python -m certvigil ARGS`` as a separate process."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    completed = subprocess.run(
        [sys.executable, "-m", "certvigil", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )
    return Result(code=completed.returncode, stdout=completed.stdout, stderr=completed.stderr)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lab:
    """A PKI whose root is written to ``ca_file``."""

    pki: ThrowawayPki
    ca_file: Path

    def leaf(self, name: str, **options: object) -> IssuedCert:
        """A leaf for ``name`` from the intermediate."""
        return self.pki.issue_leaf(dns_names=(name,), **options)
