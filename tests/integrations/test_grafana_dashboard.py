"""The exporter's inventory ``/metrics`` and the Grafana dashboard, against a real Prometheus.

A real Prometheus scrapes a real ``certvigil exporter --db``: ``/probe`` of loopback
TLS endpoints (one with the deep module, for grades and protocols) and ``/metrics``
with a store's inventory. Every PromQL expression of
``contrib/grafana/certvigil-dashboard.json`` must then evaluate without error and name
only metrics the exporter emitted.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from certvigil.analysis.model import Finding, Severity
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port
from certvigil.observed.handshake import FailureKind
from certvigil.store import open_store
from certvigil.targets.target import Target
from tests.cli.test_exporter_cmd import exporter, get
from tests.integrations.exposition import parse
from tests.store.factories import facts, failed_report, ok_report

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = Path(__file__).resolve().parents[2] / "contrib" / "grafana" / "certvigil-dashboard.json"
_VARIABLES = {"$job": ".+", "$inventory_job": ".+"}


def _dashboard() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return document


def _expressions() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and variable queries."""
    found = [
        target["expr"] for panel in _dashboard()["panels"] for target in panel.get("targets", [])
    ]
    for variable in _dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+), (\w+)\)", variable["definition"])
            assert match, variable["definition"]
            found.append(f"count by ({match.group(2)}) ({match.group(1)})")
    return found


def test_dashboard_datasource_is_a_variable() -> None:
    """Every panel, target and query variable uses ${DS_PROMETHEUS}, declared as an
    input and as a datasource variable, so the dashboard imports into any Grafana."""
    dashboard = _dashboard()
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    wanted = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == wanted, panel["title"]
        for target in panel.get("targets", []):
            assert target["datasource"] == wanted, panel["title"]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == wanted
    titles = {p["title"] for p in dashboard["panels"]}
    assert {"Expiry timeline (days left per endpoint)", "Grade spread", "Problems (probes)"} <= (
        titles
    )
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite store with four endpoints (fine, expiring, weak and revoked, failing),
    an open alert and a notification given up on."""
    url = f"sqlite:///{tmp_path_factory.mktemp('inventory') / 'certvigil.db'}"
    now = datetime.now(UTC)
    fine, soon = Target(host="fine.example", port=443), Target(host="soon.example", port=443)
    weak, down = Target(host="weak.example", port=443), Target(host="down.example", port=443)
    with open_store(url) as store:
        store.record_reports(
            [
                ok_report(
                    fine, (facts("fine.example", not_after_utc=now + timedelta(days=80)),), at=now
                ),
                ok_report(
                    soon, (facts("soon.example", not_after_utc=now + timedelta(days=6)),), at=now
                ),
                ok_report(
                    weak,
                    (facts("weak.example", not_after_utc=now + timedelta(days=50)),),
                    at=now,
                    findings=(
                        Finding(code="revoked", severity=Severity.CRITICAL, message="revoked"),
                        Finding(code="protocol_tls10", severity=Severity.WARNING, message="1.0"),
                    ),
                ),
                failed_report(down, at=now, kind=FailureKind.CONNECTION_REFUSED),
            ]
        )
        store.open_alert_if_absent(
            dedup_key="soon",
            kind="expiry",
            severity=Severity.CRITICAL,
            summary="soon.example expires in 5 days",
            now=now,
            routes=("ops-mail",),
        )
        (delivery,) = store.claim_due_deliveries(now=now)
        store.mark_failed(delivery.id, next_attempt_at=now, error="refused", give_up=True)
    return url


@pytest.fixture(scope="module")
def prometheus(
    pki: ThrowawayPki, inventory: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A real Prometheus scraping a real exporter (/probe and the inventory's /metrics);
    its base URL, once every metric family has arrived."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is missing (Debian package prometheus)")
    directory = tmp_path_factory.mktemp("grafana")
    root = directory / "root.pem"
    root.write_bytes(pki.root.pem)
    now = datetime.now(UTC)
    leaf = pki.issue_leaf(dns_names=("localhost",), not_after_utc=now + timedelta(days=20))
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as good,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as deep,
        closed_port() as refused,
    ):
        targets = [f"localhost:{good.port}", f"localhost:{deep.port}", f"localhost:{refused.port}"]
        config = directory / "certvigil.yaml"
        config.write_text(
            f"trust:\n  public: false\n  ca_files: [{root}]\ntargets:\n"
            + "".join(f"  - host: {t}\n" for t in targets)
        )
        with closed_port() as free:
            port = free.port
        with exporter(config, "--db", inventory) as url:
            address = url.removeprefix("http://")
            relabel = (
                "    relabel_configs:\n"
                "      - source_labels: [__address__]\n        target_label: __param_target\n"
                "      - source_labels: [__param_target]\n        target_label: instance\n"
                f"      - target_label: __address__\n        replacement: {address}\n"
            )
            (directory / "prometheus.yml").write_text(
                "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n"
                "scrape_configs:\n"
                "  - job_name: certvigil\n    metrics_path: /probe\n"
                f"    static_configs:\n      - targets: ['{targets[0]}', '{targets[2]}']\n"
                + relabel
                + "  - job_name: certvigil_deep\n    metrics_path: /probe\n"
                "    params: {module: [deep]}\n"
                "    scrape_interval: 20s\n    scrape_timeout: 20s\n"
                f"    static_configs:\n      - targets: ['{targets[1]}']\n"
                + relabel
                + "  - job_name: certvigil_inventory\n"
                f"    static_configs:\n      - targets: ['{address}']\n"
            )
            process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={directory / 'prometheus.yml'}",
                    f"--storage.tsdb.path={directory / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            base = f"http://127.0.0.1:{port}"
            try:
                deadline = time.monotonic() + 120
                wanted = {"probe_success", "certvigil_grade_info", "certvigil_endpoint_up"}
                while not wanted <= set(_names(base)):
                    assert process.poll() is None, "prometheus exited"
                    assert time.monotonic() < deadline, f"missing: {wanted - set(_names(base))}"
                    time.sleep(1)
                yield base
            finally:
                process.terminate()
                process.wait(timeout=20)


def _names(base: str) -> list[str]:
    try:
        status, body = get(f"{base}/api/v1/label/__name__/values")
    except OSError:
        return []
    if status != 200:
        return []
    names: list[str] = json.loads(body)["data"]
    return names


def _query(base: str, expr: str) -> tuple[int, dict[str, Any]]:
    for variable, value in _VARIABLES.items():
        expr = expr.replace(variable, value)
    status, body = get(f"{base}/api/v1/query?query={urllib.parse.quote(expr)}")
    answer: dict[str, Any] = json.loads(body)
    return status, answer


def test_exporter_serves_the_inventory_on_metrics(prometheus: str, inventory: str) -> None:
    """Prometheus reads the store's state through /metrics: days left, revocation,
    weak protocols and scan errors per endpoint."""

    def value(expr: str) -> float:
        status, answer = _query(prometheus, expr)
        assert status == 200, answer
        (sample,) = answer["data"]["result"]
        return float(sample["value"][1])

    assert value('certvigil_endpoint_expiry_remaining_days{endpoint="soon.example:443"}') == 5
    assert value('certvigil_endpoint_revoked{endpoint="weak.example:443"}') == 1
    assert value('certvigil_endpoint_weak_protocol_accepted{endpoint="weak.example:443"}') == 1
    assert value('certvigil_scan_errors{kind="connection_refused"}') == 1
    assert value("certvigil_exporter_store_up") == 1
    assert value("sum(certvigil_inventory_endpoints)") == 4


def test_every_dashboard_query_evaluates(prometheus: str) -> None:
    """Each expression of the dashboard parses and runs in Prometheus without error."""
    for expr in _expressions():
        status, answer = _query(prometheus, expr)
        assert status == 200 and answer["status"] == "success", (expr, answer)


def test_dashboard_names_only_emitted_metrics(prometheus: str) -> None:
    """Every metric name in the dashboard is one the exporter sent to Prometheus."""
    emitted = set(_names(prometheus))
    named = {
        name
        for expr in _expressions()
        for name in re.findall(r"\b((?:probe|certvigil)_[a-z0-9_]+)\b", expr)
    }
    assert named, "no metric names found"
    assert named <= emitted, named - emitted


def test_key_panels_show_data(prometheus: str) -> None:
    """The expiry timelines, grade spread and problems tables return series."""
    panels = {p["title"]: p for p in _dashboard()["panels"]}
    for title in (
        "Expiry timeline (days left per endpoint)",
        "Grade spread",
        "Expiry timeline (inventory)",
    ):
        (target,) = panels[title]["targets"]
        _, answer = _query(prometheus, target["expr"])
        assert answer["data"]["result"], title
    for title in ("Problems (probes)", "Problems (inventory)"):
        rows = [
            series
            for target in panels[title]["targets"]
            for series in _query(prometheus, target["expr"])[1]["data"]["result"]
        ]
        assert rows, title


def test_metrics_without_a_store_is_only_the_exporter(pki: ThrowawayPki, tmp_path: Path) -> None:
    """With no database configured, /metrics has the exporter's own counters only."""
    config = tmp_path / "certvigil.yaml"
    config.write_text("targets:\n  - host: localhost:1\n")
    with exporter(config) as url:
        status, body = get(f"{url}/metrics")
    assert status == 200
    parsed = parse(body)
    assert "certvigil_exporter_probes_total" in parsed.types
    assert not [name for name in parsed.types if name.startswith("certvigil_endpoint_")]
