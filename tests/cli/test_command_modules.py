"""Each sub-command starts with only its own module imported, and every one is reachable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from certvigil.cli.app import _COMMAND_MODULES, app, register_commands

register_commands([])  # every command module, so that ``app`` knows them all


def test_every_registered_command_has_its_module_named() -> None:
    """The map from command to module covers exactly the commands ``app`` knows."""
    registered = {c.name for c in app.registered_commands}
    registered |= {g.name for g in app.registered_groups}
    assert registered == set(_COMMAND_MODULES)


@pytest.mark.parametrize("command", sorted(_COMMAND_MODULES))
def test_each_command_works_from_its_own_module_alone(command: str) -> None:
    """``certvigil COMMAND --help`` in a fresh process finds the command, and no other
    command's module was imported to do it (``cert``, ``demo`` and ``grade`` reuse the
    scan command's helpers and may load it)."""
    probe = (
        "import sys\n"
        "from certvigil.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('certvigil.cli.') "
        "and m.endswith('_cmd'))\n"
        "print(','.join(loaded), code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    loaded, code = done.stdout.strip().splitlines()[-1].split(" ")
    assert code == "0"
    own = _COMMAND_MODULES[command]
    assert own in loaded.split(",")
    # The ct group is put together from the modules of its parts.
    parts = {"ct": {"certvigil.cli.ct_names_cmd"}}.get(command, set())
    assert set(loaded.split(",")) <= {own, "certvigil.cli.scan_cmd", *parts}
