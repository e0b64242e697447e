"""``certvigil serve --workers N``: PostgreSQL only; the workers share one alert stream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from websockets.sync.client import connect

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.server.keys import Scope
from certvigil.store import open_store
from tests.server.conftest import make_key, write_server_config
from tests.server.scanned import scanned_items
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def expiring_items(pki: ThrowawayPki, expiring_leaf: IssuedCert) -> list[dict[str, Any]]:
    """Four endpoints serving a leaf that crosses the 14-day threshold."""
    return scanned_items(pki, [expiring_leaf] * 4)


def test_several_workers_share_the_stream(
    store_url: str, tmp_path: Path, pki: ThrowawayPki, expiring_items: list[dict[str, Any]]
) -> None:
    """On SQLite --workers 2 is refused (64); on PostgreSQL two workers take reports and
    a WebSocket client, on whichever worker, sees each opened alert once, in order."""
    config = write_server_config(tmp_path, store_url)
    if store_url.startswith("sqlite"):
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "certvigil",
                "serve",
                "-c",
                str(config),
                "--workers",
                "2",
                "--listen",
                "127.0.0.1:0",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert refused.returncode == 64
        assert "several workers need PostgreSQL" in refused.stderr
        return
    with open_store(store_url) as store:
        agent = make_key(store, "lab", Scope.AGENT)
        reader = make_key(store, "viewer", Scope.READ)
    root = pki.root.certificate.public_bytes(Encoding.PEM).decode()
    with ServeProcess(config, extra=("--workers", "2")) as server:
        ws_url = server.url.replace("http://", "ws://") + "/api/v1/alerts/stream?after=0"
        with connect(ws_url, additional_headers={"X-API-Key": reader}) as ws:
            with httpx.Client(base_url=server.url, headers={"X-API-Key": agent}) as client:
                for item in expiring_items:  # one batch per endpoint, each sent twice
                    body = {
                        "report_id": uuid.uuid4().hex,
                        "agent": {"name": "lab"},
                        "trust": {"public": False, "ca_pem": [root]},
                        "items": [item],
                    }
                    for _ in range(2):
                        assert client.post("/api/v1/reports", json=body).status_code == 200
            events = [json.loads(ws.recv(timeout=30)) for _ in expiring_items]
    ids = [e["id"] for e in events]
    assert ids == sorted(set(ids))
    assert {e["event"] for e in events} == {"opened"}
    ports = {e["alert"]["endpoint"]["port"] for e in events}
    assert ports == {i["observation"]["target"]["port"] for i in expiring_items}
