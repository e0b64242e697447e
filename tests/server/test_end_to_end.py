"""A server and two agents on loopback: reports survive a server killed mid-way."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.server.keys import Scope
from certvigil.store import open_store
from certvigil.store.models import ALERTS, OBSERVATIONS
from certvigil.store.server_models import ALERT_EVENTS, RECEIVED_REPORTS
from tests.server.conftest import make_key, root_pem_file, write_server_config
from tests.support.serve_process import ServeProcess

pytestmark = pytest.mark.slow


def agent_config(
    directory: Path, name: str, url: str, key: str, ports: list[int], root: Path
) -> Path:
    """An agent configuration scanning loopback ports."""
    path = directory / f"{name}.yaml"
    document = {
        "server": {"url": url, "key": key, "name": name, "outbox": f"{name}.outbox.db"},
        "trust": {"ca_files": [str(root)]},
        # Every endpoint is due again a second after its scan, so each round scans all;
        # no protocol probes (a daily check, due on each agent's first round).
        "scan": {"timeout": 2, "interval": 1},
        "checks": {"protocols": False, "grade": False},
        "targets": [{"host": "127.0.0.1", "port": port} for port in ports],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def agent_command(config: Path) -> list[str]:
    return [sys.executable, "-m", "certvigil", "agent", "--config", str(config), "--once"]


_last_round: dict[Path, float] = {}


def _wait_until_due(config: Path) -> None:
    """Let the agent's 1 s interval pass since its last round ended: the rounds must
    each scan every endpoint, and the agent scans only what its schedule says is due."""
    ended = _last_round.get(config)
    if ended is not None:
        time.sleep(max(0.0, ended + 1.1 - time.monotonic()))


def run_agent(config: Path) -> subprocess.CompletedProcess[str]:
    _wait_until_due(config)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    try:
        return subprocess.run(
            agent_command(config), capture_output=True, text=True, timeout=150, env=env, check=False
        )
    finally:
        _last_round[config] = time.monotonic()


def test_two_agents_lose_nothing_across_a_server_kill(
    tmp_path: Path, pki: ThrowawayPki, leaf: IssuedCert, expiring_leaf: IssuedCert
) -> None:
    """Two agents report three rounds, the second while the server is killed and
    restarted: every observation is stored once, and each expiring certificate has
    one alert and one "opened" event."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    root = root_pem_file(pki, tmp_path)
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(TlsServer(chain=pki.served_chain_der(cert), key_pem=cert.key_pem))
            for cert in (expiring_leaf, leaf, expiring_leaf, leaf, leaf)
        ]
        ports = [s.port for s in servers]
        config = write_server_config(
            tmp_path,
            url,
            # The fifth endpoint is handed to lab-b by the server, not configured there.
            assignments=[{"agent": "lab-b", "targets": [{"host": "127.0.0.1", "port": ports[4]}]}],
        )
        with open_store(url) as store:
            keys = {name: make_key(store, name, Scope.AGENT) for name in ("lab-a", "lab-b")}
            admin = make_key(store, "boss", Scope.ADMIN)
        server = stack.enter_context(ServeProcess(config))
        configs = {
            "lab-a": agent_config(tmp_path, "lab-a", server.url, keys["lab-a"], ports[0:2], root),
            "lab-b": agent_config(tmp_path, "lab-b", server.url, keys["lab-b"], ports[2:4], root),
        }
        # Round 1: the server is up.
        for config_path in configs.values():
            result = run_agent(config_path)
            assert result.returncode == 0, result.stderr
        # Round 2: the server is killed; both agents scan, queue, and wait for it.
        server.kill()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for config_path in configs.values():
            _wait_until_due(config_path)
        waiting = [
            subprocess.Popen(
                agent_command(c),
                stderr=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            for c in configs.values()
        ]
        logs: list[list[str]] = [[] for _ in waiting]
        for process, log in zip(waiting, logs, strict=True):
            assert process.stderr is not None
            for line in process.stderr:
                log.append(line)
                if "server unreachable" in line and "next try" in line:
                    break
        server.start()  # same port
        for process, log in zip(waiting, logs, strict=True):
            assert process.stderr is not None
            log += process.stderr.readlines()
            process.stderr.close()
            assert process.wait(150) == 0, "".join(log)
        for config_path in configs.values():
            _last_round[config_path] = time.monotonic()
        # Round 3: up again.
        for config_path in configs.values():
            result = run_agent(config_path)
            assert result.returncode == 0, result.stderr
        answer = httpx.get(
            f"{server.url}/api/v1/agents", headers={"X-API-Key": admin}, timeout=10
        ).json()
    # Then: 3 rounds x (2 + 3) endpoints, each stored once, in 6 batches.
    with open_store(url) as store, store.read() as connection:
        observations = connection.execute(select(func.count()).select_from(OBSERVATIONS)).scalar()
        batches = connection.execute(select(func.count()).select_from(RECEIVED_REPORTS)).scalar()
        expiry = connection.execute(
            select(ALERTS.c.id, ALERTS.c.kind).where(ALERTS.c.kind == "expiry_threshold")
        ).all()
        opened = connection.execute(
            select(ALERT_EVENTS.c.alert_id).where(ALERT_EVENTS.c.event == "opened")
        ).all()
    assert observations == 15
    assert batches == 6
    assert len(expiry) == 2
    # One "opened" event per alert (the agents check revocation too, as the daemon does:
    # these leaves name no OCSP responder or CRL, which opens alerts of its own).
    opened_ids = [r.alert_id for r in opened]
    assert len(opened_ids) == len(set(opened_ids))
    assert {r.id for r in expiry} <= set(opened_ids)
    agents = {a["name"]: a for a in answer["items"]}
    assert set(agents) == {"lab-a", "lab-b"}
    assert agents["lab-b"]["targets"] == 3
    assert all(a["backlog"] == 0 for a in agents.values())
