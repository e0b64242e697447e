"""Mistakes in a distributed set-up are named before anything starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "certvigil", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("command", [["run", "--once", "--distributed"], ["worker"]])
def test_without_a_distributed_section(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "certvigil.yaml"
    config.write_text(
        "database_url: postgresql+psycopg://certvigil@127.0.0.1:1/none\n"
        "targets: [{host: 127.0.0.1, port: 1}]\n"
    )
    done = _run(*command, "-c", str(config))
    assert done.returncode == 64
    assert "need a 'distributed:' section with a broker_url" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", [["run", "--once", "--distributed"], ["worker"]])
def test_on_sqlite(tmp_path: Path, command: list[str]) -> None:
    config = tmp_path / "certvigil.yaml"
    config.write_text(
        f"database_url: {tmp_path / 'x.db'}\n"
        "distributed: {broker_url: 'redis://127.0.0.1:1/0'}\n"
        "targets: [{host: 127.0.0.1, port: 1}]\n"
    )
    done = _run(*command, "-c", str(config))
    assert done.returncode == 64
    assert "set database_url to a PostgreSQL URL" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_shard_size_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "certvigil.yaml"
    config.write_text(
        "distributed: {broker_url: 'redis://127.0.0.1:1/0', shard_size: 0}\n"
        "targets: [{host: 127.0.0.1, port: 1}]\n"
    )
    done = _run("config", "check", str(config))
    assert done.returncode == 64
    assert "shard_size" in done.stderr
