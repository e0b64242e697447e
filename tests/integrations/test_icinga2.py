"""The contrib/icinga2 CheckCommand loads in a real Icinga 2, which runs certvigil check with it.

Needs Debian's ``icinga2-bin`` (``scripts/install-system-deps.sh`` installs it); the tests
are skipped, with that reason, only where the binary is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import certvigil
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "icinga2"
ICINGA = shutil.which("icinga2") or (
    "/usr/sbin/icinga2" if Path("/usr/sbin/icinga2").exists() else None
)
pytestmark = pytest.mark.skipif(
    ICINGA is None, reason="icinga2 is not installed (Debian package icinga2-bin)"
)


def _daemon(directory: Path, *args: str) -> list[str]:
    """``icinga2 daemon`` with every state directory under ``directory``."""
    assert ICINGA is not None
    paths = {"DataDir": "data", "LogDir": "log", "CacheDir": "cache", "SpoolDir": "spool"}
    paths |= {"InitRunDir": "run"}
    for sub in paths.values():
        (directory / sub).mkdir(exist_ok=True)
    defines = [f"-D{name}={directory / sub}" for name, sub in paths.items()]
    return [ICINGA, "daemon", *args, *defines, "-DRunAsUser=root", "-DRunAsGroup=root"]


def _config(directory: Path, extra: str) -> Path:
    source = Path(certvigil.__file__).resolve().parents[1]
    wrapper = directory / "certvigil"
    wrapper.write_text(
        f'#!/bin/sh\nexec env PYTHONPATH={source} {sys.executable} -m certvigil "$@"\n'
    )
    wrapper.chmod(0o755)
    path = directory / "icinga2.conf"
    path.write_text(
        "include <itl>\n"
        f'const CertvigilBin = "{wrapper}"\n'
        'template Service "generic-service" { max_check_attempts = 1 }\n'
        f'include "{CONTRIB / "certvigil-command.conf"}"\n'
        f'include "{CONTRIB / "certvigil-services.conf"}"\n' + extra
    )
    return path


def test_contrib_definitions_pass_icinga_validation(tmp_path: Path) -> None:
    """``icinga2 daemon -C`` accepts the CheckCommand and the apply rule with a host using it."""
    host = (
        'object Host "www.example.org" {\n  check_command = "dummy"\n'
        '  address = "www.example.org"\n'
        '  vars.certvigil_endpoints["https"] = { certvigil_port = 443, certvigil_ocsp = true }\n'
        "}\n"
    )
    done = subprocess.run(
        _daemon(tmp_path, "-C", "-c", str(_config(tmp_path, host))),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Instantiated 1 Service." in done.stdout


def test_icinga_runs_the_check_and_records_its_state(tmp_path: Path) -> None:
    """A real Icinga 2 runs the certvigil CheckCommand against a loopback server expiring
    in 10 days and records state 2 (CRITICAL) with certvigil's output and perfdata."""
    pki = ThrowawayPki.create()
    root = tmp_path / "root.pem"
    root.write_bytes(pki.root.pem)
    leaf = pki.issue_leaf(
        dns_names=("localhost",), not_after_utc=datetime.now(UTC) + timedelta(days=10.5)
    )
    perfdata = tmp_path / "perfdata"
    perfdata.mkdir()
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        objects = (
            'object CheckerComponent "checker" { }\n'
            'object PerfdataWriter "perfdata" {\n'
            f'  service_perfdata_path = "{perfdata}/service"\n'
            f'  service_temp_path = "{tmp_path}/service.tmp"\n'
            f'  host_perfdata_path = "{perfdata}/host"\n'
            f'  host_temp_path = "{tmp_path}/host.tmp"\n'
            '  service_format_template = "STATE::$service.state_id$\\t'
            'OUTPUT::$service.output$\\tPERFDATA::$service.perfdata$"\n'
            "  rotation_interval = 1s\n}\n"
            'object Host "localhost" {\n  check_command = "dummy"\n  address = "localhost"\n'
            f'  vars.certvigil_endpoints["tls"] = {{ certvigil_port = {address.port},'
            f' certvigil_rootcert_file = "{root}" }}\n}}\n'
        )
        command = _daemon(tmp_path, "-c", str(_config(tmp_path, objects)))
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            written = ""
            while time.monotonic() < deadline and "PERFDATA::" not in written:
                assert process.poll() is None, "icinga2 exited early"
                time.sleep(0.5)
                written = "".join(path.read_text() for path in perfdata.glob("service.*"))
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    assert "PERFDATA::" in written, "no check result within 60 s"
    # One record: the output holds the long output's newlines, so split on the tabs.
    fields = dict(part.split("::", 1) for part in written.split("\t"))
    assert fields["STATE"] == "2", fields
    assert fields["OUTPUT"].startswith(
        f"CERTVIGIL CRITICAL - localhost:{address.port}: certificate localhost expires in 10"
    )
    assert fields["PERFDATA"].startswith("days=10;20;15;;")
