"""Which configuration file a command reads when none is named on the command line.

Every command that needs a configuration or the database (``run``, ``config check``,
``inventory``, ``history``, ``changes``, ``where``, ``alerts``) applies the same rule,
first match wins:

1. ``-c FILE`` / ``--config FILE`` on the command line;
2. the file named by ``$CERTVIGIL_CONFIG`` (it must exist);
3. ``certvigil.yaml`` in the working directory;
4. ``$XDG_CONFIG_HOME/certvigil/certvigil.yaml`` (``~/.config/certvigil/…`` when
   ``XDG_CONFIG_HOME`` is unset);
5. ``/etc/certvigil/certvigil.yaml``.

In each directory of steps 3 to 5 the names ``certvigil.yaml``, ``certvigil.yml``,
``certvigil.toml`` and ``certvigil.json`` are looked for; two of them in one directory
is an error, since either could be meant. The file found names the database; a relative
``database_url`` is taken from the file's directory (``LoadedConfig.database_url``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from certvigil.errors import ConfigError, UsageError

CONFIG_ENV = "CERTVIGIL_CONFIG"
"""Environment variable naming the configuration file when ``-c`` is not given."""

CONFIG_NAMES = ("certvigil.yaml", "certvigil.yml", "certvigil.toml", "certvigil.json")
"""The file names looked for in each configuration directory, in this order."""

SYSTEM_CONFIG_DIR = Path("/etc/certvigil")
"""The system-wide configuration directory (the last place looked)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigChoice:
    """The configuration a command uses, and why that one.

    Attributes:
        path: The file; ``None`` when none was named and none was found.
        origin: How it was chosen: ``"--config"``, ``"$CERTVIGIL_CONFIG"``, or
            ``"found"`` (a file in one of the searched directories).
        searched: The files that were looked for (for a message when none is found).
    """

    path: Path | None
    origin: str
    searched: tuple[Path, ...] = ()


def config_directories(
    *, environ: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[Path, ...]:
    """The directories searched for a configuration file, in order of precedence."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_CONFIG_HOME") or ""
    # XDG: a relative XDG_CONFIG_HOME is invalid and must be ignored.
    user_base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return (cwd if cwd is not None else Path.cwd(), user_base / "certvigil", SYSTEM_CONFIG_DIR)


def find_config(
    explicit: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ConfigChoice:
    """Choose the configuration file by the rule in this module's docstring.

    Args:
        explicit: The ``--config`` option, if given.
        environ: The environment (``os.environ`` when ``None``).
        cwd: The working directory (the process's when ``None``).

    Returns:
        The choice; ``path`` is ``None`` when nothing was named and no file exists.

    Raises:
        ConfigError: ``$CERTVIGIL_CONFIG`` names a file that does not exist.
        UsageError: One directory holds two candidate files.
    """
    if explicit is not None:
        return ConfigChoice(path=explicit, origin="--config")
    env = os.environ if environ is None else environ
    named = env.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(str(path), f"named by ${CONFIG_ENV}, but there is no such file")
        return ConfigChoice(path=path, origin=f"${CONFIG_ENV}")
    searched: list[Path] = []
    for directory in config_directories(environ=env, cwd=cwd):
        candidates = [directory / name for name in CONFIG_NAMES]
        searched.extend(candidates)
        present = [path for path in candidates if path.is_file()]
        if len(present) > 1:
            names = " and ".join(str(path) for path in present)
            raise UsageError(f"{names} both exist; pass --config FILE to choose one")
        if present:
            return ConfigChoice(path=present[0], origin="found", searched=tuple(searched))
    return ConfigChoice(path=None, origin="none", searched=tuple(searched))


def require_config(explicit: Path | None) -> Path:
    """The configuration file a command cannot do without (``run``, ``config check``).

    Raises:
        UsageError: None was named and none was found (the message lists where it looked).
        ConfigError: ``$CERTVIGIL_CONFIG`` names a missing file.
    """
    choice = find_config(explicit)
    if choice.path is None:
        places = ", ".join(str(path.parent / CONFIG_NAMES[0]) for path in choice.searched[::4])
        raise UsageError(
            f"no configuration: pass --config FILE, set ${CONFIG_ENV}, or create one of {places}"
        )
    return choice.path
