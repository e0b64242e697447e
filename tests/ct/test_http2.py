"""The CT watch speaks HTTP/2 to a log that offers it: a real nginx serving Navigli2025h2's
real tiles over TLS with HTTP/2, its access log telling which protocol each request used."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.fetch.tail import TailItem, TailState, tail_once
from certvigil.ct.log_list import CtLog, LogProtocol, LogState
from certvigil.ct.signature import log_id
from certvigil.ct.static_ct import checkpoint_origin
from tests.support.ct_log_server import NAVIGLI_ROOTS, TestLogKey, navigli_files

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
FAST = FetchPolicy(deadline=10.0, retries=2, backoff_base=0.01, backoff_cap=0.05)

_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    log_format proto '$server_protocol $request_uri $status';
    access_log {root}/access.log proto;
    client_body_temp_path {root}/tmp; proxy_temp_path {root}/tmp;
    fastcgi_temp_path {root}/tmp; uwsgi_temp_path {root}/tmp; scgi_temp_path {root}/tmp;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {root}/server.pem;
        ssl_certificate_key {root}/server.key;
        root {root}/log;
    }}
}}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Nginx:
    """nginx serving ``root/log`` over TLS with HTTP/2 on a loopback port."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}/"

    def start(self, nginx: str) -> None:
        (self.root / "tmp").mkdir()
        (self.root / "nginx.conf").write_text(_CONF.format(root=self.root, port=self.port))
        self.process = subprocess.Popen(
            [nginx, "-p", str(self.root), "-c", str(self.root / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                errors = (self.root / "error.log").read_text(errors="replace")
                raise RuntimeError(f"nginx exited: {errors}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen within 10 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def protocols(self) -> list[tuple[str, str, str]]:
        """``(protocol, path, status)`` of every request served."""
        lines = (self.root / "access.log").read_text().splitlines()
        return [tuple(line.split(" ", 2)) for line in lines]  # type: ignore[misc]


@pytest.fixture
def navigli_over_h2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Nginx]:
    """Navigli2025h2's 1024 entries behind nginx, its certificate trusted by the process."""
    if NGINX is None:
        pytest.fail("nginx is not installed: run scripts/install-system-deps.sh")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    server.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    nginx = Nginx(tmp_path)
    key = TestLogKey()
    files = navigli_files(1024)
    files["checkpoint"] = key.checkpoint(checkpoint_origin(nginx.url), 1024, NAVIGLI_ROOTS[1024])
    for name, body in files.items():
        path = tmp_path / "log" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    nginx.key_der = key.der  # type: ignore[attr-defined]
    nginx.start(NGINX)
    try:
        yield nginx
    finally:
        nginx.stop()


def test_a_log_offering_http2_is_read_over_http2(navigli_over_h2: Nginx) -> None:
    """Every entry is read, and every request the log served came over HTTP/2."""
    nginx = navigli_over_h2
    key_der: bytes = nginx.key_der  # type: ignore[attr-defined]
    log = CtLog(
        description="Navigli2025h2 (nginx, HTTP/2)",
        operator="test",
        log_id=log_id(key_der),
        key=key_der,
        protocol=LogProtocol.STATIC,
        url=nginx.url,
        submission_url=nginx.url,
        mmd=60,
        state=LogState.USABLE,
    )
    seen: list[TailItem] = []

    result = asyncio.run(tail_once(log, TailState(), seen.append, policy=FAST))

    assert [item.index for item in seen] == list(range(1024))
    assert result.state.last_error == "" and result.state.position == 1024
    served = nginx.protocols()
    assert any(path.startswith("/tile/data/") for _, path, _ in served)
    assert {protocol for protocol, _, _ in served} == {"HTTP/2.0"}, served
