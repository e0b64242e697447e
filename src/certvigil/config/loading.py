"""Read a configuration file (YAML, TOML or JSON) into a validated ``Config``."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from certvigil.config.locate import (
    SAFE_LOADER,
    FieldPath,
    format_field_path,
    json_line_map,
    toml_line,
    yaml_line_map,
)
from certvigil.config.model import FOREIGN_KEYS, SEED_RENAMES, Config, ConfigFormat
from certvigil.errors import ConfigError

_SUFFIX_FORMATS: dict[str, ConfigFormat] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".toml": "toml",
    ".json": "json",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedConfig:
    """A validated configuration and where it came from.

    Attributes:
        path: The file read.
        format: ``yaml``, ``toml`` or ``json``.
        config: The validated configuration.
        notes: Things worth telling the user that are not mistakes (keys of other tools
            accepted and ignored, renamed keys), each ``file:line: field: text``.
        text: The file's text, to locate fields in later messages.
    """

    path: Path
    format: ConfigFormat
    config: Config
    notes: tuple[str, ...] = ()
    text: str = ""

    @property
    def base_dir(self) -> Path:
        """The directory that relative paths in the configuration are read from."""
        return self.path.parent

    @property
    def database_url(self) -> str | None:
        """The configured database: a URL as written, a plain path made absolute."""
        url = self.config.database_url
        if url is None or "://" in url:
            return url
        return str(self.resolve(Path(url).expanduser()))

    def resolve(self, path: Path) -> Path:
        """``path`` made absolute against the configuration file's directory."""
        return path if path.is_absolute() else self.base_dir / path


class _Located:
    """Finds the line of a field path in one file's text, whatever its format."""

    def __init__(self, text: str, fmt: ConfigFormat) -> None:
        self._text = text
        self._format = fmt
        self._map: dict[FieldPath, int] | None = None
        self.renamed: dict[FieldPath, FieldPath] = {}

    def _lines(self) -> dict[FieldPath, int]:
        # Built on the first question only: a valid file never pays for a second parse.
        if self._map is None:
            self._map = json_line_map(self._text) if self._format == "json" else {}
            if self._format == "yaml":
                self._map = yaml_line_map(self._text)
        return self._map

    def original(self, path: FieldPath) -> FieldPath:
        """The path as written in the file, undoing SSL Scout renames."""
        for new, old in self.renamed.items():
            if path[: len(new)] == new:
                return (*old, *path[len(new) :])
        return path

    def line(self, path: FieldPath) -> int | None:
        path = self.original(path)
        if self._format == "toml":
            return toml_line(self._text, path)
        lines = self._lines()
        for end in range(len(path), 0, -1):
            line = lines.get(path[:end])
            if line is not None:
                return line
        return None


def detect_format(path: Path) -> ConfigFormat:
    """The configuration format named by ``path``'s suffix.

    Raises:
        ConfigError: The suffix is not ``.yaml``, ``.yml``, ``.toml`` or ``.json``.
    """
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            str(path), f'unknown format "{path.suffix}"; name it .yaml, .yml, .toml or .json'
        )
    return fmt


def load_config(path: Path | str) -> LoadedConfig:
    """Read, parse and validate a configuration file.

    Args:
        path: A ``.yaml``/``.yml``, ``.toml`` or ``.json`` file. A JSON file in the shape
            of an SSL Scout configuration loads too (its keys are mapped onto certvigil's).

    Returns:
        The validated configuration with notes about ignored foreign keys.

    Raises:
        ConfigError: The file cannot be read or parsed, or is invalid; ``problems``
            holds one error per mistake, each naming field and line.
    """
    path = Path(path)
    fmt = detect_format(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    return load_config_text(text, fmt=fmt, path=path)


def load_config_text(text: str, *, fmt: ConfigFormat, path: Path) -> LoadedConfig:
    """Parse and validate configuration ``text`` of format ``fmt`` that came from ``path``.

    Raises:
        ConfigError: As for :func:`load_config`.
    """
    name = str(path)
    data = _parse(text, fmt, name)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(name, "the top level must be a mapping of settings", line=1)
    located = _Located(text, fmt)
    data, notes, problems = _translate_foreign(data, located, name)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problems(exc, data, located, name))
    if problems:
        problems.sort(key=lambda problem: problem.line or 0)
        raise _combined(name, problems)
    notes.sort(key=_note_line)
    return LoadedConfig(path=path, format=fmt, config=config, notes=tuple(notes), text=text)


def _note_line(note: str) -> int:
    match = re.match(r"^.*?:(\d+): ", note)
    return int(match.group(1)) if match else 0


def locate_field(loaded: LoadedConfig) -> Callable[[FieldPath], int | None]:
    """A function giving the line of a field path in ``loaded``'s file (``None``: unknown)."""
    return _Located(loaded.text, loaded.format).line


def _parse(text: str, fmt: ConfigFormat, name: str) -> Any:
    if fmt == "yaml":
        try:
            return yaml.load(text, Loader=SAFE_LOADER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else None
            raise ConfigError(name, f"not valid YAML: {exc.problem or exc}", line=line) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(name, f"not valid YAML: {exc}") from exc
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(name, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(name, f"not valid TOML: {reason}", line=line) from exc


def _translate_foreign(
    data: dict[str, Any], located: _Located, name: str
) -> tuple[dict[str, Any], list[str], list[ConfigError]]:
    """Map SSL Scout's flat keys onto certvigil's sections; note and drop foreign keys."""
    notes: list[str] = []
    problems: list[ConfigError] = []
    out = dict(data)
    for key, reason in FOREIGN_KEYS.items():
        if key in out:
            del out[key]
            line = located.line((key,))
            where = f"{name}:{line}" if line else name
            notes.append(f"{where}: {key}: accepted and ignored ({reason})")
    for key, (section, field) in SEED_RENAMES.items():
        if key not in out:
            continue
        value = out.pop(key)
        target = out.get(section, {})
        if not isinstance(target, dict):
            continue
        if field in target:
            line = located.line((key,))
            problems.append(
                ConfigError(
                    name,
                    f"set twice: here and as {section}.{field}",
                    location=key,
                    line=line,
                )
            )
            continue
        out[section] = {**target, field: value}
        located.renamed[(section, field)] = (key,)
        line = located.line((key,))
        where = f"{name}:{line}" if line else name
        notes.append(f"{where}: {key}: read as {section}.{field}")
    return out, notes, problems


def _problems(
    exc: ValidationError, data: Mapping[str, Any], located: _Located, name: str
) -> list[ConfigError]:
    problems: list[ConfigError] = []
    for error in exc.errors(include_url=False):
        path = _data_path(error["loc"], data)
        reason = _reason(error)
        location = format_field_path(located.original(path)) or None
        problems.append(ConfigError(name, reason, location=location, line=located.line(path)))
    return problems


def _data_path(loc: tuple[int | str, ...], data: Any) -> FieldPath:
    """The part of pydantic's error location that names fields present in the data.

    pydantic inserts validator and union-member names into locations; those are
    dropped, keeping the parts that index the data, plus a missing last field.
    """
    path: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif index == len(loc) - 1 and isinstance(part, str) and isinstance(node, dict):
            path.append(part)
    return tuple(path)


def _reason(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    if kind == "enum":
        expected = error.get("ctx", {}).get("expected", "")
        return f"must be one of {expected}" if expected else message
    return message[:1].lower() + message[1:]


def _combined(name: str, problems: list[ConfigError]) -> ConfigError:
    if len(problems) == 1:
        return problems[0]
    first = problems[0]
    return ConfigError(
        name,
        f"{len(problems)} mistakes, the first: {first}",
        problems=tuple(problems),
    )
