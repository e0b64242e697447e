"""Seed 000 (SSL Scout): its configuration runs unchanged with ``certvigil agent``, and
the server answers its API paths with its field names.

The configuration below is SSL Scout's documented file; only the values that name
this test's world change (the key, the server URL, loopback targets, the log file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.server.keys import Scope
from certvigil.store import open_store
from tests.server.conftest import make_key, write_server_config
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.slow

SEED_000_CONFIG = """{
"api_key": "YOUR_API_KEY_HERE",
"api_endpoint": "https://www.dnsscience.io/api/sslscout/report",
"scan_interval": 3600,
"targets": [
{"host": "internal-app.example.com", "port": 443},
{"host": "192.168.1.100", "port": 8443},
{"host": "10.0.0.0/24", "port": 443}
],
"alert_days_before_expiry": [30, 14, 7, 1],
"log_file": "/var/log/dnsscience_sslscout.log",
"websocket_alerts": true,
"timeout": 10
}"""


def seed_config(path: Path, *, key: str, endpoint: str, ports: list[int]) -> Path:
    """Seed 000's file with this test's key, server and loopback targets."""
    document = json.loads(SEED_000_CONFIG)
    document["api_key"] = key
    document["api_endpoint"] = endpoint
    document["targets"] = [{"host": "127.0.0.1", "port": p} for p in ports]
    document["log_file"] = str(path.parent / "sslscout.log")
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


def test_an_ssl_scout_setup_works_against_certvigil(
    tmp_path: Path, pki: ThrowawayPki, leaf: IssuedCert, expiring_leaf: IssuedCert
) -> None:
    """Given SSL Scout's config, `certvigil agent --once` reports to /api/sslscout/report;
    then SSL Scout's three requests read the certificate expiring within 30 days, its
    unread alert, and acknowledge it."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    config = write_server_config(tmp_path, url)
    with open_store(url) as store:
        key = make_key(store, "scout", Scope.ADMIN)
    with (
        TlsServer(chain=pki.served_chain_der(expiring_leaf), key_pem=expiring_leaf.key_pem) as a,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as b,
        ServeProcess(config) as server,
    ):
        agent_file = seed_config(
            tmp_path / "sslscout.json",
            key=key,
            endpoint=f"{server.url}/api/sslscout/report",
            ports=[a.port, b.port],
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        run = subprocess.run(
            [sys.executable, "-m", "certvigil", "agent", "--config", str(agent_file), "--once"],
            capture_output=True,
            text=True,
            timeout=150,
            env=env,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "api_endpoint: read as server.url" in run.stderr
        headers = {"X-API-Key": key}
        certificates = httpx.get(
            f"{server.url}/api/sslscout/certificates?expiring_within=30&host=127",
            headers=headers,
        ).json()
        unread = httpx.get(f"{server.url}/api/sslscout/alerts?unread=true", headers=headers).json()
        # The test PKI is not publicly trusted, so untrusted-chain alerts come too.
        (alert,) = [a for a in unread["alerts"] if a["type"] == "expiry_threshold"]
        acknowledged = httpx.post(
            f"{server.url}/api/sslscout/alerts/{alert['id']}/acknowledge", headers=headers
        ).json()
        after = httpx.get(f"{server.url}/api/sslscout/alerts?unread=true", headers=headers).json()
    (certificate,) = certificates["certificates"]
    assert certificate["port"] == a.port
    assert certificate["fingerprint_sha256"] == expiring_leaf.sha256_hex
    assert certificate["days_until_expiry"] in (9, 10)
    for field in (
        "subject_cn",
        "subject_alt_names",
        "issuer",
        "not_before",
        "not_after",
        "fingerprint_sha1",
        "key_type",
        "key_size",
        "self_signed",
    ):
        assert field in certificate
    assert "127.0.0.1" in certificate["subject_alt_names"]
    assert alert["host"] == "127.0.0.1" and alert["port"] == a.port
    assert alert["unread"] is True
    assert acknowledged["success"] is True and acknowledged["alert"]["acknowledged"] is True
    assert alert["id"] not in [a["id"] for a in after["alerts"]]
    assert len(after["alerts"]) == len(unread["alerts"]) - 1
    assert (tmp_path / "sslscout.log").read_text(encoding="utf-8").count("cycle:") == 1
