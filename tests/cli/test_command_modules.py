"""Each sub-command starts with only its own module imported, and every one is reachable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from certvigil.cli import commands  # noqa: F401  (registers every command)
from certvigil.cli.app import _COMMAND_MODULES, app


def test_every_registered_command_has_its_module_named() -> None:
    """The map from command to module covers exactly the commands ``app`` knows."""
    registered = {c.name for c in app.registered_commands}
    registered |= {g.name for g in app.registered_groups}
    assert registered == set(_COMMAND_MODULES)


@pytest.mark.parametrize("command", sorted(_COMMAND_MODULES))
def test_each_command_works_from_its_own_module_alone(command: str) -> None:
    """``certvigil COMMAND --help`` in a fresh process finds the command, and a command
    other than ``alerts`` and ``run`` does not import apprise to do it."""
    probe = (
        "import sys\n"
        "from certvigil.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit as exc:\n"
        "    code = exc.code\n"
        "print('APPRISE' if 'apprise' in sys.modules else 'NO-APPRISE', code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.endswith(" 0")
    if command not in ("alerts", "run"):
        assert last.startswith("NO-APPRISE")
