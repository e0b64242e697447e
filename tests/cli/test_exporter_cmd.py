"""``certvigil exporter`` serves blackbox-style probes of configured targets only."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port
from tests.integrations.exposition import Parsed, parse
from tests.support.fault_servers import SilentServer

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
RULES = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"


@contextmanager
def exporter(config: Path, *extra: str) -> Iterator[str]:
    """A running ``certvigil exporter --config CONFIG [EXTRA...]`` on a free loopback port;
    its base URL."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "certvigil",
            "exporter",
            "--config",
            str(config),
            "--listen",
            "127.0.0.1:0",
            *extra,
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on (http://\S+)/", line)
        assert match, line + process.stderr.read()
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET ``url``: (status, body)."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def write_config(path: Path, root: Path, endpoints: list[str]) -> Path:
    """A daemon configuration trusting only ``root`` with ``endpoints`` as targets."""
    lines = ["trust:", "  public: false", f"  ca_files: [{root}]", "targets:"]
    lines += [f"  - host: {endpoint}" for endpoint in endpoints]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def lab(pki: ThrowawayPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Loopback endpoints (good, hostile subject, expired, refused, silent), configured
    for a running exporter; yields the URLs and endpoints."""
    directory = tmp_path_factory.mktemp("exporter")
    root = directory / "root.pem"
    root.write_bytes(pki.root.pem)
    now = datetime.now(UTC)
    good = pki.issue_leaf(dns_names=("localhost",), not_after_utc=now + timedelta(days=40))
    hostile = pki.issue_leaf(
        dns_names=("localhost",),
        common_name='evil"} probe_success 1\nx\\',
        not_after_utc=now + timedelta(days=40),
    )
    expired = pki.issue_leaf(
        dns_names=("localhost",),
        not_before_utc=now - timedelta(days=90),
        not_after_utc=now - timedelta(days=2),
    )

    def server(leaf: IssuedCert) -> TlsServer:
        return TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)

    with (
        server(good) as a,
        server(hostile) as b,
        server(expired) as c,
        closed_port() as d,
        SilentServer() as e,
    ):
        endpoints = {
            "good": f"localhost:{a.port}",
            "hostile": f"localhost:{b.port}",
            "expired": f"localhost:{c.port}",
            "refused": f"localhost:{d.port}",
            "silent": f"localhost:{e.port}",
        }
        config = write_config(directory / "certvigil.yaml", root, list(endpoints.values()))
        with exporter(config) as url:
            yield {
                "url": url,
                "dir": str(directory),
                "good_not_after": str(good.certificate.not_valid_after_utc.timestamp()),
                **endpoints,
            }


def probe(lab: dict[str, str], name: str, module: str = "default") -> Parsed:
    """``/probe`` of the lab endpoint ``name``, parsed strictly."""
    status, body = get(f"{lab['url']}/probe?target={lab[name]}&module={module}")
    assert status == 200, body
    return parse(body)


def test_probe_of_a_good_endpoint_has_blackbox_metrics(lab: dict[str, str]) -> None:
    """A configured, trusted endpoint probes with probe_success 1 and blackbox's TLS metrics."""
    parsed = probe(lab, "good")
    assert parsed.value("probe_success") == 1
    assert parsed.value("probe_ssl_earliest_cert_expiry") == float(lab["good_not_after"])
    assert parsed.value("probe_ssl_last_chain_expiry_timestamp_seconds") == float(
        lab["good_not_after"]
    )
    (info,) = parsed.labels_of("probe_ssl_last_chain_info")
    assert set(info) == {
        "fingerprint_sha256",
        "subject",
        "issuer",
        "subjectalternative",
        "serialnumber",
    }
    assert info["subject"] == "CN=localhost" and info["subjectalternative"] == "localhost"
    assert parsed.labels_of("probe_tls_version_info") == [{"version": "TLS 1.3"}]
    assert parsed.labels_of("probe_tls_cipher_info")[0]["cipher"].startswith("TLS_")
    assert parsed.value("certvigil_chain_trusted") == 1
    assert parsed.value("certvigil_hostname_match") == 1
    assert 39 * 86400 < parsed.value("certvigil_leaf_expiry_remaining_seconds") <= 40 * 86400
    assert 0 < parsed.value("probe_duration_seconds") < 10
    assert parsed.types["probe_success"] == "gauge"


def test_hostile_subject_is_escaped(lab: dict[str, str]) -> None:
    """A subject with quote, brace, newline and backslash stays one label value."""
    parsed = probe(lab, "hostile")
    (info,) = parsed.labels_of("probe_ssl_last_chain_info")
    assert info["subject"] == 'CN=evil\\"} probe_success 1\nx\\\\'
    assert parsed.value("probe_success") == 1


def test_expired_endpoint_fails_the_probe_with_the_reason(lab: dict[str, str]) -> None:
    """An expired chain gives probe_success 0, a past expiry and the expired finding."""
    parsed = probe(lab, "expired")
    assert parsed.value("probe_success") == 0
    assert parsed.value("probe_ssl_earliest_cert_expiry") < time.time()
    assert parsed.value("certvigil_findings", code="expired", severity="critical") == 1
    assert parsed.value("certvigil_chain_trusted") == 0


def test_refused_endpoint_names_the_failure(lab: dict[str, str]) -> None:
    """A configured endpoint that refuses connections answers probe_success 0 and the kind."""
    parsed = probe(lab, "refused")
    assert parsed.value("probe_success") == 0
    assert parsed.value("certvigil_probe_failure_info", kind="connection_refused") == 1


def test_probe_keeps_to_the_scrape_time_out(lab: dict[str, str]) -> None:
    """A silent endpoint answers probe_success 0 within Prometheus' scrape time-out header."""
    started = time.monotonic()
    status, body = get(
        f"{lab['url']}/probe?target={lab['silent']}",
        headers={"X-Prometheus-Scrape-Timeout-Seconds": "1.5"},
    )
    elapsed = time.monotonic() - started
    assert status == 200
    parsed = parse(body)
    assert parsed.value("probe_success") == 0
    assert parsed.labels_of("certvigil_probe_failure_info") == [{"kind": "timeout"}]
    assert elapsed < 3


def test_targets_outside_the_configuration_are_refused(lab: dict[str, str]) -> None:
    """Any target the configuration does not name is 403; a bad one or module is 400."""
    port = lab["good"].rsplit(":", 1)[1]
    assert get(f"{lab['url']}/probe?target=127.0.0.2:{port}")[0] == 403
    assert get(f"{lab['url']}/probe?target=localhost:1")[0] == 403
    assert get(f"{lab['url']}/probe?target=exa%20mple:443")[0] == 400
    assert get(f"{lab['url']}/probe?target={lab['good']}&module=icmp")[0] == 400
    assert get(f"{lab['url']}/nothing")[0] == 404
    status, body = get(f"{lab['url']}/metrics")
    assert status == 200
    own = parse(body)
    assert own.value("certvigil_exporter_probes_denied_total") >= 2
    assert own.value("certvigil_exporter_targets") == 5


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_http_edge_cases_get_clear_statuses(lab: dict[str, str]) -> None:
    """POST is 405, headers over 16 KiB are 431, a garbage request line is 400."""
    url = lab["url"]
    assert _raw(url, b"POST /probe HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 405 ")
    huge = b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert _raw(url, huge).startswith(b"HTTP/1.1 431 ")
    assert _raw(url, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_deep_module_reports_grade_and_protocols(lab: dict[str, str]) -> None:
    """module=deep adds the grade and the accepted protocols."""
    parsed = probe(lab, "good", module="deep")
    assert parsed.labels_of("certvigil_grade_info") == [{"grade": "A"}]
    versions = {labels["version"] for labels in parsed.labels_of("certvigil_tls_protocol_accepted")}
    assert "TLS 1.3" in versions


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is missing (Debian package prometheus)")
def test_promtool_accepts_the_exposition(lab: dict[str, str]) -> None:
    """``promtool check metrics`` finds no problem in a probe's or /metrics' text."""
    assert PROMTOOL is not None
    for path in (f"/probe?target={lab['hostile']}", f"/probe?target={lab['refused']}", "/metrics"):
        body = get(lab["url"] + path)[1]
        done = subprocess.run(
            [PROMTOOL, "check", "metrics"],
            input=body,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, path + "\n" + done.stdout + done.stderr


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is missing (Debian package prometheus)")
def test_alert_rules_check_and_unit_tests_pass() -> None:
    """``promtool check rules`` and ``promtool test rules`` pass on contrib/prometheus."""
    assert PROMTOOL is not None
    for args in (
        ["check", "rules", "certvigil.rules.yml"],
        ["test", "rules", "certvigil.rules.test.yml"],
    ):
        done = subprocess.run(
            [PROMTOOL, *args],
            cwd=RULES,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus is missing (Debian package prometheus)")
def test_prometheus_scrapes_the_exporter_and_fires_the_expired_rule(
    lab: dict[str, str],
) -> None:
    """A real Prometheus scrapes /probe through the usual relabelling and fires
    TLSCertificateExpired for the expired endpoint, and only for it."""
    assert PROMETHEUS is not None
    directory = Path(lab["dir"]) / "prometheus"
    directory.mkdir()
    exporter_address = lab["url"].removeprefix("http://")
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files: [{RULES / 'certvigil.rules.yml'}]\n"
        "scrape_configs:\n"
        "  - job_name: certvigil\n    metrics_path: /probe\n    scrape_timeout: 1s\n"
        f"    static_configs:\n      - targets: ['{lab['good']}', '{lab['expired']}']\n"
        "    relabel_configs:\n"
        "      - source_labels: [__address__]\n        target_label: __param_target\n"
        "      - source_labels: [__param_target]\n        target_label: instance\n"
        f"      - target_label: __address__\n        replacement: {exporter_address}\n"
    )
    with closed_port() as free:
        port = free.port
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        firing: list[str] = []
        while time.monotonic() < deadline and not firing:
            time.sleep(1)
            assert process.poll() is None, "prometheus exited"
            try:
                body = get(f"http://127.0.0.1:{port}/api/v1/alerts")[1]
            except OSError:
                continue
            alerts = json.loads(body)["data"]["alerts"]
            firing = [
                a["labels"]["instance"]
                for a in alerts
                if a["labels"]["alertname"] == "TLSCertificateExpired" and a["state"] == "firing"
            ]
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert firing == [lab["expired"]]
