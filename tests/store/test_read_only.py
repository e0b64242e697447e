"""A database that cannot be written still serves the commands that only read.

The file system is really read-only: a tmpfs remounted ``ro`` (root only; skipped where
mount is not permitted). Root ignores file modes, so a 0444 file would not show it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from certvigil.alerts.engine import AlertEngine
from certvigil.cli.app import main
from certvigil.errors import StoreError
from certvigil.store import open_store
from tests.alerts.factories import T0, leaf, report


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def read_only_database(tmp_path: Path) -> Iterator[Path]:
    """A SQLite inventory with one open critical alert, on a file system mounted read-only."""
    mount_point = tmp_path / "ro"
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = _mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point))
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.strip()}")
    try:
        database = mount_point / "inventory.db"
        with open_store(str(database)) as store:
            cert = leaf("ro", not_before=T0, lifetime=timedelta(days=365))
            AlertEngine(store).record_and_process(report(cert, T0, trusted=False), T0)
        done = _mount("-o", "remount,ro", str(mount_point))
        assert done.returncode == 0, done.stderr
        yield database
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err


def test_read_only_database_serves_inventory_and_alerts_list(
    read_only_database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``inventory`` and ``alerts list`` read it; a write names the database, no crash."""
    code, out, err = _cli(["inventory", "--db", str(read_only_database), "--json"], capsys)
    assert code == 0, err
    assert "www.example.test" in out
    code, out, err = _cli(["alerts", "list", "--db", str(read_only_database), "--json"], capsys)
    assert code == 2, err
    (alert,) = json.loads(out)["alerts"]
    assert alert["kind"] == "untrusted"
    with open_store(str(read_only_database)) as store:
        assert len(store.list_alerts()) == 1
        with pytest.raises(StoreError, match=r"inventory\.db"):
            store.acknowledge_alert(alert["id"], by="me", now=T0)
