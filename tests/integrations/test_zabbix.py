"""``certvigil zabbix`` and the Zabbix template: discovery, item values, a real Zabbix 6.0.

The template is checked for consistency everywhere (UUIDs, references between items,
triggers and value maps, JSONPaths against real ``zabbix get ... json`` output); where
Debian's Zabbix server and frontend are installed, it is imported through the API and
a real ``zabbix_server`` discovers loopback endpoints, runs the external check and
raises the expected problems.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServedChain, TlsServer, closed_port
from certvigil.integrations.zabbix import ITEM_KEYS
from certvigil.store import open_store
from certvigil.targets.target import StartTLS, Target
from tests.cli.scan_lab import run_cli
from tests.store.factories import facts, ok_report
from tests.support.postgres import ThrowawayPostgres
from tests.support.zabbix import ThrowawayZabbix, zabbix_missing

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "contrib" / "zabbix" / "certvigil_template.yaml"
_UUID4 = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")


def _template() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(TEMPLATE.read_text())
    export: dict[str, Any] = document["zabbix_export"]
    return export


@pytest.fixture(scope="module")
def lab(pki: ThrowawayPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Loopback endpoints (good, expired, refused) and a configuration naming them."""
    directory = tmp_path_factory.mktemp("zabbix")
    root = directory / "root.pem"
    root.write_bytes(pki.root.pem)
    now = datetime.now(UTC)
    good = pki.issue_leaf(dns_names=("localhost",), not_after_utc=now + timedelta(days=40, hours=1))
    expired = pki.issue_leaf(
        dns_names=("localhost",),
        not_before_utc=now - timedelta(days=90),
        not_after_utc=now - timedelta(days=2),
    )

    def server(leaf: IssuedCert) -> TlsServer:
        return TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)

    with server(good) as a, server(expired) as b, closed_port() as c:
        endpoints = {
            "good": f"localhost:{a.port}",
            "expired": f"localhost:{b.port}",
            "refused": f"localhost:{c.port}",
        }
        config = directory / "certvigil.yaml"
        config.write_text(
            "trust:\n  public: false\n"
            f"  ca_files: [{root}]\n"
            "targets:\n"
            f"  - host: {endpoints['good']}\n    tags: [prod, web]\n"
            f"  - host: {endpoints['expired']}\n"
            f"  - host: {endpoints['refused']}\n"
        )
        yield {"config": str(config), "dir": str(directory), "root": str(root), **endpoints}


def _get(capsys: pytest.CaptureFixture[str], lab: dict[str, str], name: str) -> dict[str, Any]:
    result = run_cli(capsys, "zabbix", "get", lab[name], "json", "--config", lab["config"])
    assert result.code == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


# --- the template, checked without Zabbix -----------------------------------------


def test_template_references_hold() -> None:
    """Every UUID is a unique UUIDv4 (Zabbix 6.0 refuses others), every dependent item's
    master exists, every trigger names items of the template, every value map exists."""
    export = _template()
    assert export["version"] == "6.0"
    (template,) = export["templates"]
    name = template["template"]
    (rule,) = template["discovery_rules"]
    prototypes = rule["item_prototypes"]
    triggers = [t for p in prototypes for t in p.get("trigger_prototypes", [])]
    uuids = [
        export["groups"][0]["uuid"],
        template["uuid"],
        rule["uuid"],
        *(p["uuid"] for p in prototypes),
        *(t["uuid"] for t in triggers),
        *(v["uuid"] for v in template["valuemaps"]),
    ]
    assert all(_UUID4.fullmatch(u) for u in uuids), uuids
    assert len(set(uuids)) == len(uuids)
    keys = {p["key"] for p in prototypes}
    assert len(keys) == len(prototypes)
    valuemaps = {v["name"] for v in template["valuemaps"]}
    macros = {m["macro"] for m in template["macros"]}
    for prototype in prototypes:
        assert prototype["type"] in {"EXTERNAL", "DEPENDENT"}
        assert prototype["value_type"] in {"FLOAT", "UNSIGNED", "CHAR", "TEXT"}
        if prototype["type"] == "DEPENDENT":
            assert prototype["master_item"]["key"] in keys
            assert "{#TARGET}" in prototype["key"]
        if "valuemap" in prototype:
            assert prototype["valuemap"]["name"] in valuemaps
    for trigger in triggers:
        referenced = re.findall(
            r"/([^/]+)/(certvigil\.[a-z_0-9]+\[[^\]]*\])", trigger["expression"]
        )
        assert referenced, trigger["expression"]
        assert all(host == name and key in keys for host, key in referenced)
        for dependency in trigger.get("dependencies", []):
            assert any(
                t["name"] == dependency["name"] and t["expression"] == dependency["expression"]
                for t in triggers
            )
    used_macros = set(re.findall(r"\{\$[A-Z.]+\}", TEMPLATE.read_text()))
    assert used_macros <= macros


def test_template_has_the_triggers_the_issue_asks_for() -> None:
    """Expiry in 30/14/7 days and expired, untrusted, revoked and weak protocol."""
    (template,) = _template()["templates"]
    prototypes = template["discovery_rules"][0]["item_prototypes"]
    names = {t["name"] for p in prototypes for t in p.get("trigger_prototypes", [])}
    macros = {m["macro"]: m["value"] for m in template["macros"]}
    assert [macros[f"{{$CERTVIGIL.EXPIRY.{k}}}"] for k in ("WARN", "HIGH", "CRIT")] == [
        "30",
        "14",
        "7",
    ]
    for fragment in (
        "{$CERTVIGIL.EXPIRY.WARN} days",
        "{$CERTVIGIL.EXPIRY.HIGH} days",
        "{$CERTVIGIL.EXPIRY.CRIT} days",
        "has expired",
        "not trusted",
        "revoked",
        "weak TLS protocol",
    ):
        assert any(fragment in name for name in names), fragment


def test_dependent_item_paths_read_real_get_output(
    capsys: pytest.CaptureFixture[str], lab: dict[str, str]
) -> None:
    """Each dependent item's JSONPath finds a value of its Zabbix type in what
    ``zabbix get HOST:PORT json`` prints for a good endpoint."""
    document = _get(capsys, lab, "good")
    (template,) = _template()["templates"]
    for prototype in template["discovery_rules"][0]["item_prototypes"]:
        if prototype["type"] != "DEPENDENT":
            continue
        (step, *_) = prototype["preprocessing"]
        assert step["type"] == "JSONPATH"
        assert step["error_handler"] == "DISCARD_VALUE"
        (path,) = step["parameters"]
        match = re.fullmatch(r"\$\.([a-z_0-9]+)", path)
        assert match, path
        field = match.group(1)
        assert field in ITEM_KEYS
        assert field in document, field
        value = document[field]
        if prototype["value_type"] == "UNSIGNED":
            assert isinstance(value, int) and value >= 0, (field, value)
        elif prototype["value_type"] == "FLOAT":
            assert isinstance(value, int | float), (field, value)
        else:
            assert isinstance(value, str), (field, value)


# --- the commands ------------------------------------------------------------------


def test_discover_lists_configured_endpoints(
    capsys: pytest.CaptureFixture[str], lab: dict[str, str]
) -> None:
    """The LLD document has one row per configured endpoint with its macros and tags."""
    result = run_cli(capsys, "zabbix", "discover", "--config", lab["config"])
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)["data"]
    assert [row["{#TARGET}"] for row in rows] == [lab["good"], lab["expired"], lab["refused"]]
    good = rows[0]
    assert good["{#HOST}"] == "localhost"
    assert good["{#PORT}"] == lab["good"].split(":")[1]
    assert (good["{#SNI}"], good["{#STARTTLS}"], good["{#TAGS}"]) == ("", "", "prod,web")
    assert good["tags"] == [
        {"tag": "certvigil", "value": "prod"},
        {"tag": "certvigil", "value": "web"},
    ]


def test_discover_from_the_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--from store lists every recorded endpoint, SNI, STARTTLS and IPv6 included."""
    url = f"sqlite:///{tmp_path / 'inventory.db'}"
    now = datetime.now(UTC)
    targets = [
        Target(host="mail.example", port=25, starttls=StartTLS.SMTP),
        Target(host="2001:db8::7", port=443, sni="v6.example"),
    ]
    with open_store(url) as store:
        for target in targets:
            leaf = facts(target.sni or target.host, not_after_utc=now + timedelta(days=9))
            store.record_report(ok_report(target, (leaf,), at=now), tags=["edge"])
    config = tmp_path / "certvigil.yaml"
    config.write_text("targets: []\n")
    result = run_cli(
        capsys, "zabbix", "discover", "--config", str(config), "--from", "store", "--db", url
    )
    assert result.code == 0, result.stderr
    rows = json.loads(result.stdout)["data"]
    assert [(r["{#TARGET}"], r["{#SNI}"], r["{#STARTTLS}"], r["{#TAGS}"]) for r in rows] == [
        ("[2001:db8::7]:443", "v6.example", "", "edge"),
        ("mail.example:25", "", "smtp", "edge"),
    ]


def test_get_json_tells_each_endpoint_apart(
    capsys: pytest.CaptureFixture[str], lab: dict[str, str]
) -> None:
    """Good, expired and refused endpoints give documents that say so; a failed probe
    leaves out what it cannot know, so dependent items discard rather than store 0."""
    good = _get(capsys, lab, "good")
    assert (good["success"], good["trusted"], good["hostname_match"]) == (1, 1, 1)
    assert good["days_left"] == 40
    assert good["revoked"] == 2  # the default module does not check revocation
    assert good["weak_protocol"] == 2
    assert good["error_kind"] == ""
    assert good["tls_version"].startswith("TLS 1.")
    expired = _get(capsys, lab, "expired")
    assert expired["success"] == 0
    assert expired["days_left"] == -3
    assert "expired" in expired["problems"]
    refused = _get(capsys, lab, "refused")
    assert (refused["success"], refused["error_kind"]) == (0, "connection_refused")
    assert "days_left" not in refused
    assert "trusted" not in refused


def test_get_one_key(capsys: pytest.CaptureFixture[str], lab: dict[str, str]) -> None:
    """A single key prints its value; one without a value exits 1 with the reason."""
    result = run_cli(capsys, "zabbix", "get", lab["good"], "days_left", "--config", lab["config"])
    assert (result.code, result.stdout) == (0, "40\n")
    result = run_cli(
        capsys, "zabbix", "get", lab["refused"], "days_left", "--config", lab["config"]
    )
    assert (result.code, result.stdout) == (1, "")
    assert "connection refused" in result.stderr


def test_get_refuses_unconfigured_endpoints_and_bad_keys(
    capsys: pytest.CaptureFixture[str], lab: dict[str, str]
) -> None:
    """With --config only its endpoints are scanned; unknown keys are usage errors."""
    result = run_cli(capsys, "zabbix", "get", "localhost:1", "json", "--config", lab["config"])
    assert result.code == 64
    assert "not an endpoint of" in result.stderr
    result = run_cli(capsys, "zabbix", "get", lab["good"], "days")
    assert result.code == 64
    assert "days_left" in result.stderr
    result = run_cli(capsys, "zabbix", "get", lab["good"], "json", "--module", "x")
    assert result.code == 64


def test_get_without_config_uses_the_given_trust(
    capsys: pytest.CaptureFixture[str], lab: dict[str, str]
) -> None:
    """Without --config, --rootcert-file decides trust."""
    result = run_cli(
        capsys, "zabbix", "get", lab["good"], "trusted", "--rootcert-file", lab["root"]
    )
    assert (result.code, result.stdout) == (0, "1\n")


# --- a real Zabbix -------------------------------------------------------------------


def _wait(what: str, zabbix: ThrowawayZabbix, probe: Any, timeout_s: float = 180) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline or not zabbix.server_running():
            pytest.fail(f"Zabbix: no {what} in {timeout_s:g} s\n{zabbix.server_log()}")
        time.sleep(1)


@pytest.mark.skipif(zabbix_missing() is not None, reason=zabbix_missing() or "")
def test_real_zabbix_imports_the_template_and_raises_problems(
    lab: dict[str, str], postgres_server: ThrowawayPostgres
) -> None:
    """Zabbix 6.0 imports the template through its API; its server discovers the
    configured endpoints, runs the external check, fills the dependent items through
    their JSONPaths and raises "has expired" (not the 7-day trigger that depends on it)
    and "cannot observe", and nothing for the good endpoint."""
    with ThrowawayZabbix(postgres_server) as zabbix:
        # Given: the template imported and a host using it
        rules = {
            name: {"createMissing": True, "updateExisting": True}
            for name in ("groups", "templates", "items", "discoveryRules", "triggers", "valueMaps")
        }
        assert zabbix.call(
            "configuration.import",
            {"format": "yaml", "source": TEMPLATE.read_text(), "rules": rules},
        )
        (template,) = zabbix.call(
            "template.get", {"filter": {"host": "certvigil TLS certificates"}}
        )
        prototypes = zabbix.call(
            "itemprototype.get", {"templateids": template["templateid"], "output": ["key_"]}
        )
        assert len(prototypes) == len(
            _template()["templates"][0]["discovery_rules"][0]["item_prototypes"]
        )
        scripts = Path(lab["dir"]) / "externalscripts"
        scripts.mkdir(exist_ok=True)
        script = scripts / "certvigil"
        script.write_text(
            f'#!/bin/sh\nPYTHONPATH={ROOT / "src"} exec {sys.executable} -m certvigil "$@"\n'
        )
        script.chmod(0o755)
        (group,) = zabbix.call("hostgroup.get", {"filter": {"name": "Linux servers"}})
        macros = {
            "{$CERTVIGIL.CONFIG}": lab["config"],
            "{$CERTVIGIL.DISCOVER.INTERVAL}": "5s",
            "{$CERTVIGIL.INTERVAL}": "5s",
            "{$CERTVIGIL.MODULE}": "default",
            "{$CERTVIGIL.TIMEOUT}": "10",
        }
        host = zabbix.call(
            "host.create",
            {
                "host": "certvigil-lab",
                "groups": [{"groupid": group["groupid"]}],
                "templates": [{"templateid": template["templateid"]}],
                "interfaces": [
                    {
                        "type": 1,
                        "main": 1,
                        "useip": 1,
                        "ip": "127.0.0.1",
                        "dns": "",
                        "port": "10050",
                    }
                ],
                "macros": [{"macro": k, "value": v} for k, v in macros.items()],
            },
        )
        hostid = host["hostids"][0]
        # When: the server runs
        zabbix.start_server(scripts)

        def days_left() -> dict[str, float]:
            items = zabbix.call(
                "item.get",
                {
                    "hostids": hostid,
                    "search": {"key_": "certvigil.days_left"},
                    "output": ["key_", "lastvalue", "lastclock", "state", "error"],
                },
            )
            return {
                item["key_"]: float(item["lastvalue"]) for item in items if item["lastclock"] != "0"
            }

        values = _wait(
            "days left for both endpoints", zabbix, lambda: len(days_left()) >= 2 and days_left()
        )
        # Then: values through the template's JSONPaths
        by_target = {re.search(r'"([^"]+)"', key).group(1): v for key, v in values.items()}  # type: ignore[union-attr]
        assert by_target == {lab["good"]: 40.0, lab["expired"]: -3.0}

        def problems() -> set[str]:
            found = zabbix.call("problem.get", {"hostids": hostid, "output": ["name"]})
            return {p["name"] for p in found}

        wanted = {
            f"{lab['expired']}: TLS certificate has expired",
            f"{lab['refused']}: certvigil cannot observe the endpoint",
        }
        raised = _wait("problems", zabbix, lambda: wanted <= problems() and problems())
        assert not [p for p in raised if lab["good"] in p], raised
        assert f"{lab['expired']}: TLS certificate expires in less than 7 days" not in raised


def test_template_matches_its_generator() -> None:
    """contrib/zabbix/certvigil_template.yaml is what make_template.py writes."""
    made = subprocess.run(
        [sys.executable, str(TEMPLATE.parent / "make_template.py"), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert made.stdout == TEMPLATE.read_text()


def test_get_picks_the_configured_endpoint_with_the_same_sni(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, tmp_path: Path
) -> None:
    """Two configured endpoints on one host and port, one with an SNI: each discovery
    row's get scans its own, whichever comes first in the file."""
    now = datetime.now(UTC)
    default = pki.issue_leaf(
        dns_names=("localhost",), not_after_utc=now + timedelta(days=30, hours=1)
    )
    other = pki.issue_leaf(
        dns_names=("other.test",), not_after_utc=now + timedelta(days=60, hours=1)
    )
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.pem)
    with TlsServer(
        chain=pki.served_chain_der(default),
        key_pem=default.key_pem,
        sni_chains={
            "other.test": ServedChain(chain=pki.served_chain_der(other), key_pem=other.key_pem)
        },
    ) as server:
        config = tmp_path / "certvigil.yaml"
        config.write_text(
            f"trust:\n  public: false\n  ca_files: [{root}]\ntargets:\n"
            f"  - host: localhost:{server.port}\n    sni: other.test\n"
            f"  - host: localhost:{server.port}\n"
        )
        discovered = run_cli(capsys, "zabbix", "discover", "--config", str(config))
        rows = json.loads(discovered.stdout)["data"]
        days = {}
        for row in rows:
            result = run_cli(
                capsys,
                "zabbix",
                "get",
                row["{#TARGET}"],
                "days_left",
                "--config",
                str(config),
                "--sni",
                row["{#SNI}"],
                "--starttls",
                row["{#STARTTLS}"],
            )
            assert result.code == 0, result.stderr
            days[row["{#SNI}"]] = result.stdout
    assert days == {"other.test": "60\n", "": "30\n"}


def test_hostile_certificate_text_stays_one_value(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, tmp_path: Path
) -> None:
    """A subject with quotes, newlines and escapes stays inside its JSON string, and a
    single key prints it on one line with the control characters escaped."""
    hostile = 'evil"}\n{"success": 1}\x1b[2J\\'
    leaf = pki.issue_leaf(dns_names=("localhost",), common_name=hostile)
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.pem)
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        target = f"localhost:{server.port}"
        whole = run_cli(capsys, "zabbix", "get", target, "json", "--rootcert-file", str(root))
        one = run_cli(capsys, "zabbix", "get", target, "subject", "--rootcert-file", str(root))
    assert whole.code == 0, whole.stderr
    assert whole.stdout.count("\n") == 1
    assert json.loads(whole.stdout)["subject"] == leaf.certificate.subject.rfc4514_string()
    assert one.code == 0, one.stderr
    assert one.stdout.count("\n") == 1
    assert "\x1b" not in one.stdout
