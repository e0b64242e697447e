"""Restart without gap: ``certvigil ct watch`` killed with SIGKILL in the middle of a log,
then started again, has processed every entry exactly once and alerted nothing twice."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from certvigil.ct.static_ct import checkpoint_origin
from certvigil.ct.watch import persist
from certvigil.store import open_store
from certvigil.store.ct_models import CT_LOG_STATES
from certvigil.store.models import ALERTS
from tests.ct.test_watch import DOMAINS, expected_matches
from tests.support.ct_log_server import CtLogServer, TestLogKey, synthetic_static_log

SIZE = 4096
"""Sixteen tiles of Navigli's real leaves, each certificate every 1024 entries."""
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served() -> Iterator[tuple[CtLogServer, TestLogKey]]:
    """A local static log of SIZE entries."""
    with CtLogServer() as server:
        key = TestLogKey()
        files, root = synthetic_static_log(SIZE)
        site = server.site("static")
        site.files.update(files)
        origin = checkpoint_origin(server.url("static"))
        site.files["checkpoint"] = key.checkpoint(origin, SIZE, root)
        yield server, key


def _config(tmp_path: Path, server: CtLogServer, key: TestLogKey) -> Path:
    domains = "\n".join(f"    - name: {d}" for d in DOMAINS)
    text = (
        f"database_url: {tmp_path / 'ct.db'}\n"
        "ct:\n"
        "  use_log_list: false\n"
        "  caa: false\n"
        "  commit_every: 50\n"
        "  logs:\n"
        f"    - monitoring_url: {server.url('static')}\n"
        f"      key: {base64.b64encode(key.der).decode()}\n"
        f"  domains:\n{domains}\n"
    )
    path = tmp_path / "certvigil.yaml"
    path.write_text(text)
    return path


def _watch(config: Path, *, errors: int = subprocess.PIPE) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "certvigil",
            "ct",
            "watch",
            "-c",
            str(config),
            "--once",
            "--from-start",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )


@pytest.mark.slow
def test_sigkill_mid_log_then_restart_sees_every_entry_once(
    served: tuple[CtLogServer, TestLogKey], tmp_path: Path
) -> None:
    """Killed while it waits for the ninth tile, the watch has committed part of the log;
    restarted, it reads on from there: each matching entry is recorded exactly once and
    no alert is raised twice."""
    server, key = served
    config = _config(tmp_path, server, key)
    reached, release = server.hold("tile/data/008")

    # Given a watch that has read the first tiles and waits for the ninth,
    first = _watch(config, errors=subprocess.DEVNULL)
    try:
        assert reached.wait(timeout=60), "the watch never asked for tile 8"
        # When it is killed without warning,
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        release.set()
    assert first.returncode == -signal.SIGKILL
    store = open_store(str(tmp_path / "ct.db"))
    with store, store.read() as connection:
        position = connection.execute(select(CT_LOG_STATES.c.position)).scalar()
        seen_before = persist.sighting_entries(connection)
    assert position is not None and 0 < position < SIZE
    assert all(index < position for _, index in seen_before)
    server.holds.clear()

    # and started again,
    second = _watch(config)
    _, errors = second.communicate(timeout=120)

    # then every matching entry of the log is recorded once, and every alert once.
    assert second.returncode == 0, errors.decode()
    base = sorted(expected_matches(DOMAINS))
    expected = sorted(i + copy for copy in range(0, SIZE, 1024) for i in base)
    store = open_store(str(tmp_path / "ct.db"))
    with store, store.read() as connection:
        seen = [index for _, index in persist.sighting_entries(connection)]
        keys = Counter(connection.execute(select(ALERTS.c.dedup_key)).scalars())
        final = connection.execute(select(CT_LOG_STATES.c.position)).scalar()
    assert final == SIZE
    assert sorted(seen) == expected
    assert [k for k, n in keys.items() if n > 1] == []
    assert keys
