"""``certvigil rejudge``: stored observations judged again with today's trust store."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from certvigil.cli.app import main
from certvigil.cli.exitcodes import ExitCode
from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.store import open_store


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def _config(directory: Path, port: int, *, with_ca: bool) -> Path:
    trust = "{public: true, ca_files: [internal-ca.pem]}" if with_ca else "{public: true}"
    path = directory / "certvigil.yaml"
    path.write_text(
        "database_url: inventory.db\n"
        "scan: {interval: 1h, jitter: 0, timeout: 5s}\n"
        f"trust: {trust}\n"
        "checks: {revocation: false, protocols: false, grade: false}\n"
        f"targets:\n  - host: localhost\n    port: {port}\n",
        encoding="utf-8",
    )
    return path


def test_adding_a_ca_file_turns_an_untrusted_endpoint_trusted_without_a_scan(
    tmp_path: Path, pki: ThrowawayPki, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given an endpoint under an internal CA the configuration does not trust, observed
    once; when the CA file is added and ``rejudge`` runs with the server gone, then the
    endpoint is trusted and its "untrusted" alert is resolved."""
    (tmp_path / "internal-ca.pem").write_bytes(pki.root.pem)
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        config = _config(tmp_path, server.port, with_ca=False)
        loaded = load_config(config)
        store = open_store(loaded.database_url)
        daemon = Daemon(
            loaded,
            expand_targets(loaded).targets,
            store=store,
            scan_options=ScanOptions(retries=0, fetch_missing_issuers=False),
        )
        asyncio.run(daemon.run(once=True))
        assert [a.kind for a in store.list_alerts()] == ["untrusted"]
        store.close()
    # The server is gone: whatever rejudge says comes from the store.
    code, out, err = _run(["rejudge", "-c", str(config), "--dry-run", "--json"], capsys)
    assert json.loads(out)["endpoints"][0]["trusted_after"] is False
    _config(tmp_path, server.port, with_ca=True)
    code, out, err = _run(["rejudge", "-c", str(config), "--json"], capsys)
    document = json.loads(out)
    (endpoint,) = document["endpoints"]
    assert (endpoint["trusted_before"], endpoint["trusted_after"]) == (False, True)
    assert endpoint["alert_events"] == [
        {"action": "resolve", "kind": "untrusted", "title": endpoint["alert_events"][0]["title"]}
    ]
    assert code == ExitCode.OK, err
    assert "1 observations re-judged, 1 changed, 1 alert events" in err
    store = open_store(load_config(config).database_url)
    try:
        (alert,) = store.list_alerts()
        assert alert.state.value == "resolved"
        (record,) = store.list_endpoints()
        (latest, *_) = store.endpoint_history(record.id)
        assert latest.is_trusted is True
    finally:
        store.close()
    # Judged again with nothing new: nothing changes, nothing is raised.
    code, out, err = _run(["rejudge", "-c", str(config)], capsys)
    assert code == ExitCode.OK
    assert "1 observations re-judged, 0 changed, 0 alert events" in err
    assert "trusted" in out


def test_rejudge_without_configuration_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No configuration found: one error line, exit 64."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CERTVIGIL_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    code, _out, err = _run(["rejudge"], capsys)
    assert code == ExitCode.USAGE
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
