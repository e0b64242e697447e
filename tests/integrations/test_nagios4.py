"""The contrib/nagios definitions load in a real Nagios 4, which runs certvigil check with them.

Needs Debian's ``nagios4-core`` (``scripts/install-system-deps.sh`` installs it); the
tests are skipped, with that reason, only where the binary is missing.
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

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "nagios"
NAGIOS = shutil.which("nagios4") or (
    "/usr/sbin/nagios4" if Path("/usr/sbin/nagios4").exists() else None
)
pytestmark = pytest.mark.skipif(
    NAGIOS is None, reason="nagios4 is not installed (Debian package nagios4-core)"
)

# What the examples expect from a site's own configuration: templates, a contact group,
# a time period and the host check command.
HARNESS = """
define timeperiod {
    timeperiod_name 24x7
    alias           always
    sunday          00:00-24:00
    monday          00:00-24:00
    tuesday         00:00-24:00
    wednesday       00:00-24:00
    thursday        00:00-24:00
    friday          00:00-24:00
    saturday        00:00-24:00
}
define command {
    command_name    notify-nobody
    command_line    /bin/true
}
define command {
    command_name    check-host-alive
    command_line    /bin/true
}
define contact {
    contact_name                    nobody
    host_notifications_enabled      0
    service_notifications_enabled   0
    host_notification_period        24x7
    service_notification_period     24x7
    host_notification_options       n
    service_notification_options    n
    host_notification_commands      notify-nobody
    service_notification_commands   notify-nobody
}
define contactgroup {
    contactgroup_name   admins
    members             nobody
}
define host {
    name                    generic-host
    check_period            24x7
    check_interval          5
    retry_interval          1
    max_check_attempts      1
    notification_period     24x7
    notification_interval   0
    contact_groups          admins
    register                0
}
define service {
    name                    generic-service
    check_period            24x7
    max_check_attempts      1
    check_interval          1
    retry_interval          1
    notification_period     24x7
    notification_interval   0
    contact_groups          admins
    active_checks_enabled   1
    register                0
}
"""


def _main_cfg(directory: Path, object_files: list[Path]) -> Path:
    (directory / "checkresults").mkdir()
    lines = [
        f"log_file={directory / 'nagios.log'}",
        *(f"cfg_file={path}" for path in object_files),
        f"object_cache_file={directory / 'objects.cache'}",
        f"precached_object_file={directory / 'objects.precache'}",
        f"resource_file={directory / 'resource.cfg'}",
        f"status_file={directory / 'status.dat'}",
        "status_update_interval=1",
        "nagios_user=root",
        "nagios_group=root",
        "check_external_commands=0",
        f"command_file={directory / 'nagios.cmd'}",
        f"lock_file={directory / 'nagios.lock'}",
        f"temp_file={directory / 'nagios.tmp'}",
        f"temp_path={directory}",
        f"check_result_path={directory / 'checkresults'}",
        "retain_state_information=0",
        f"state_retention_file={directory / 'retention.dat'}",
        "interval_length=1",
        "max_service_check_spread=1",
        "max_host_check_spread=1",
        "service_inter_check_delay_method=n",
        "host_inter_check_delay_method=n",
        "check_result_reaper_frequency=1",
        "service_check_timeout=60",
        "enable_notifications=0",
        "use_syslog=0",
        "log_initial_states=1",
        "enable_environment_macros=0",
    ]
    path = directory / "nagios.cfg"
    path.write_text("\n".join(lines) + "\n")
    return path


def _resource(directory: Path) -> None:
    """$USER5$: a wrapper that runs this checkout's certvigil with this interpreter."""
    source = Path(certvigil.__file__).resolve().parents[1]
    wrapper = directory / "certvigil"
    wrapper.write_text(
        f'#!/bin/sh\nexec env PYTHONPATH={source} {sys.executable} -m certvigil "$@"\n'
    )
    wrapper.chmod(0o755)
    (directory / "resource.cfg").write_text(f"$USER5$={wrapper}\n")


@pytest.fixture
def nagios_dir(tmp_path: Path) -> Path:
    """A directory holding the harness objects and the resource file."""
    (tmp_path / "harness.cfg").write_text(HARNESS)
    _resource(tmp_path)
    return tmp_path


def test_contrib_definitions_pass_nagios_verification(nagios_dir: Path) -> None:
    """``nagios4 -v`` accepts the contrib commands and example services with no error."""
    assert NAGIOS is not None
    main = _main_cfg(
        nagios_dir,
        [
            nagios_dir / "harness.cfg",
            CONTRIB / "certvigil-commands.cfg",
            CONTRIB / "certvigil-services.cfg",
        ],
    )
    done = subprocess.run(
        [NAGIOS, "-v", str(main)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Total Errors:   0" in done.stdout


def _service_status(status: Path) -> dict[str, str] | None:
    """The checked servicestatus block of status.dat, ``None`` until there is one."""
    if not status.exists():
        return None
    for block in status.read_text(errors="replace").split("servicestatus {")[1:]:
        fields = dict(
            line.strip().split("=", 1)
            for line in block.split("}", 1)[0].splitlines()
            if "=" in line
        )
        if fields.get("has_been_checked") == "1":
            return fields
    return None


def test_nagios_runs_the_check_and_records_its_state(nagios_dir: Path) -> None:
    """A real Nagios runs check_certvigil against a loopback server expiring in 10 days
    and records CRITICAL with certvigil's status line and perfdata."""
    assert NAGIOS is not None
    pki = ThrowawayPki.create()
    root = nagios_dir / "root.pem"
    root.write_bytes(pki.root.pem)
    now = datetime.now(UTC)
    leaf = pki.issue_leaf(dns_names=("localhost",), not_after_utc=now + timedelta(days=10.5))
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        services = nagios_dir / "services.cfg"
        services.write_text(
            "define host {\n  use generic-host\n  host_name localhost\n"
            "  address localhost\n  check_command check-host-alive\n}\n"
            "define service {\n  use generic-service\n  host_name localhost\n"
            "  service_description tls\n"
            f"  check_command check_certvigil!{address.port}!20!15!--rootcert-file {root}\n}}\n"
        )
        main = _main_cfg(
            nagios_dir,
            [nagios_dir / "harness.cfg", CONTRIB / "certvigil-commands.cfg", services],
        )
        process = subprocess.Popen(
            [NAGIOS, str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 60
            status = None
            while time.monotonic() < deadline and status is None:
                assert process.poll() is None, (nagios_dir / "nagios.log").read_text()
                time.sleep(0.5)
                status = _service_status(nagios_dir / "status.dat")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
    assert status is not None, (nagios_dir / "nagios.log").read_text()
    assert status["current_state"] == "2", status
    assert status["plugin_output"].startswith(
        f"CERTVIGIL CRITICAL - localhost:{address.port}: certificate localhost expires in 10"
    )
    assert status["performance_data"].startswith("days=10;20;15;;")
    assert "chain_length=2;;;0;" in status["performance_data"]
