"""``certvigil serve`` runs on the event loop its configuration names: uvloop.

uvicorn chooses the loop ("auto": uvloop when installed) in ``Server.run``; a server
started by ``asyncio.run(Server.serve())`` runs on asyncio's own loop instead. Measured
with ``bench/server_api.py`` (docs/dependencies.md), uvloop cut the server's CPU outside
the ingest functions from about 27 to 23-24 µs per observation.
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import write_server_config
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads the server's memory map from /proc"
)


def _mapped_files(pid: int) -> set[str]:
    lines = Path(f"/proc/{pid}/maps").read_text(encoding="utf-8").splitlines()
    return {line.split(maxsplit=5)[5] for line in lines if len(line.split(maxsplit=5)) == 6}


def test_one_process_server_runs_on_uvloop(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    config = write_server_config(tmp_path, f"sqlite:///{tmp_path / 'server.db'}")
    with ServeProcess(config) as server:
        assert httpx.get(f"{server.url}/api/v1/openapi.json", timeout=10).status_code == 200
        loaded = _mapped_files(server.pid)
    assert any("/uvloop/loop." in path for path in loaded), sorted(
        p for p in loaded if "site-packages" in p
    )[:20]
