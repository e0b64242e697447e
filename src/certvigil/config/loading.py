"""Read a configuration file (YAML, TOML or JSON) into a validated ``Config``."""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from certvigil.config.locate import (
    SAFE_LOADER,
    FieldPath,
    format_field_path,
    json_line_map,
    toml_line,
    yaml_line_map,
)
from certvigil.config.model import FOREIGN_KEYS, SEED_RENAMES, Config, ConfigFormat
from certvigil.config.units import Threshold
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
    text = read_config_text(path)
    return load_config_text(text, fmt=fmt, path=path)


def read_config_text(path: Path) -> str:
    """The text of a configuration file, bounded in size and checked to be UTF-8.

    Raises:
        ConfigError: The file is missing, unreadable, too large or not UTF-8 text; the
            reason is in words, the operating system's error is the exception's cause.
    """
    name = str(path)
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError as exc:
        raise ConfigError(name, "no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(name, "is a directory, not a configuration file") from exc
    except PermissionError as exc:
        raise ConfigError(name, "cannot be read: permission denied") from exc
    except OSError as exc:
        raise ConfigError(name, f"cannot be read: {(exc.strerror or 'error').lower()}") from exc
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(name, f"larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            name, f"not UTF-8 text (byte 0x{data[exc.start]:02x})", line=line
        ) from exc


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
    try:
        data = _parse_text(text, fmt, name)
    except RecursionError as exc:
        raise ConfigError(name, "nested too deeply to be a configuration") from exc
    _check_shape(data, name)
    return data


def _parse_text(text: str, fmt: ConfigFormat, name: str) -> Any:
    if fmt == "yaml":
        try:
            return yaml.load(text, Loader=_YamlLoader)
        except yaml.MarkedYAMLError as exc:
            raise _yaml_error(exc, text, name) from exc
        except yaml.YAMLError as exc:
            raise ConfigError(name, f"not valid YAML: {_first_line(str(exc))}") from exc
    if fmt == "json":
        try:
            return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_json_object)
        except json.JSONDecodeError as exc:
            raise ConfigError(name, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
        except ValueError as exc:  # a number too long to convert, NaN, Infinity
            raise ConfigError(name, f"not valid JSON: {_value_words(exc)}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line = int(match.group(1)) if match else None
        raise ConfigError(name, f"not valid TOML: {reason}", line=line) from exc
    except ValueError as exc:  # an integer of more digits than Python converts
        raise ConfigError(name, f"not valid TOML: {_value_words(exc)}") from exc


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f'"{key[:60]}" is set twice in one object')
        out[key] = value
    return out


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _value_words(exc: ValueError) -> str:
    text = str(exc)
    if "digits" in text:
        return "a number has more digits than any setting can use"
    return _first_line(text)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "unreadable"


_YAML_TAG_NAMES = {
    "tag:yaml.org,2002:": "!!",
}


class _YamlLoader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, with a value that its tag cannot read reported as a YAML error.

    PyYAML's safe constructors raise ``ValueError``, ``AttributeError`` and others for
    values such as ``!!float abc`` or ``!!timestamp 2001-13-99zz``; here each becomes a
    ``ConstructorError`` marked at the value's line.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        # A key written twice would silently keep the last value; refuse it where it
        # repeats (keys merged in with "<<" may be overridden, as YAML intends).
        seen: dict[str, int] = {}
        # "!!map text" reaches here with a scalar node; PyYAML's own check refuses it.
        pairs = node.value if isinstance(node, yaml.MappingNode) else []
        for key_node, _value in pairs:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = str(key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f'"{key[:60]}" is set twice (first at line {seen[key]})',
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:
            tag = str(node.tag)
            for prefix, short in _YAML_TAG_NAMES.items():
                tag = tag.replace(prefix, short)
            value = node.value if isinstance(node.value, str) else "…"
            raise yaml.constructor.ConstructorError(
                None, None, f'"{value[:60]}" cannot be read as {tag}', node.start_mark
            ) from exc


_YAML_CONTEXTS = {
    "while scanning a quoted scalar": "a quoted text is not closed",
    "while parsing a quoted scalar": "a quoted text is not valid",
    "while scanning a simple key": 'a line is not "key: value" (a ":" is missing?)',
    "while parsing a flow sequence": 'a "[" list is not closed with "]"',
    "while parsing a flow mapping": 'a "{" mapping is not closed with "}"',
    "while scanning a block scalar": 'a "|" or ">" text block is not valid',
}
"""YAML contexts whose mark (not the problem's) is where the mistake was made."""


def _yaml_error(exc: yaml.MarkedYAMLError, text: str, name: str) -> ConfigError:
    """A YAML syntax error, at the line where the mistake most likely is, in words."""
    problem = exc.problem or _first_line(str(exc))
    problem_line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
    lines = text.splitlines()
    words = _YAML_CONTEXTS.get(exc.context or "")
    if words is not None and exc.context_mark is not None:
        where = f" at line {problem_line}" if problem_line else ""
        return ConfigError(
            name,
            f"not valid YAML: {words} ({problem}{where})",
            line=exc.context_mark.line + 1,
        )
    if problem_line is not None and problem.startswith("mapping values are not allowed"):
        # "key value" then "key: value" below it read as one text running over both
        # lines; the line missing its ":" is the first of that run.
        first = _first_of_plain_run(lines, problem_line - 1)
        if first is not None:
            return ConfigError(
                name,
                f'not valid YAML: "{lines[first].strip()[:60]}" is not "key: value" '
                '(a ":" is missing?)',
                line=first + 1,
            )
    mark = exc.problem_mark
    if (
        mark is not None
        and mark.line < len(lines)
        and lines[mark.line][mark.column : mark.column + 1] == "\t"
    ):
        problem = "a tab character; YAML is indented with spaces"
    return ConfigError(name, f"not valid YAML: {problem}", line=problem_line)


def _first_of_plain_run(lines: list[str], index: int) -> int | None:
    first: int | None = None
    for number in range(index - 1, -1, -1):
        line = lines[number].strip()
        if not line or line.startswith(("#", "-", "[", "{")) or ":" in line:
            break
        first = number
    return first


MAX_CONFIG_BYTES = 16 * 1024 * 1024
"""The largest configuration file read (long target lists belong in target sources)."""

MAX_CONFIG_VALUES = 1_000_000
"""The most values a configuration may hold once YAML aliases are expanded."""


def _check_shape(data: Any, name: str) -> None:
    """Refuse a document that refers to itself or that aliases blow up past a bound.

    Raises:
        ConfigError: A cycle (``&a [*a]``), or more than ``MAX_CONFIG_VALUES`` values.
    """
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        if not isinstance(node, dict | list):
            return 1
        key = id(node)
        if key in active:
            raise ConfigError(name, "a YAML alias refers to the mapping or list it is in")
        if key in sizes:
            return sizes[key]
        if depth > 64:
            raise ConfigError(name, "nested too deeply to be a configuration")
        active.add(key)
        children = node.values() if isinstance(node, dict) else node
        total = 1 + sum(size(child, depth + 1) for child in children)
        active.discard(key)
        if total > MAX_CONFIG_VALUES:
            raise ConfigError(name, f"more than {MAX_CONFIG_VALUES:,} values (YAML aliases?)")
        sizes[key] = total
        return total

    size(data, 0)


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
        if error["type"] == "extra_forbidden" and path and isinstance(path[-1], str):
            reason += _suggestion(path[-1], valid_keys(path[:-1]))
        location = format_field_path(located.original(path)) or None
        problems.append(ConfigError(name, reason, location=location, line=located.line(path)))
    return problems


def valid_keys(path: FieldPath) -> tuple[str, ...]:
    """The keys a configuration accepts in the mapping at ``path`` (``()``: the top)."""
    model: Any = Config
    for part in path:
        if isinstance(part, int):
            continue
        field = next(
            (f for n, f in model.model_fields.items() if part in (n, f.alias)),
            None,
        )
        if field is None:
            return ()
        model = _model_in(field.annotation)
        if model is None:
            return ()
    keys = tuple(f.alias or n for n, f in model.model_fields.items())
    if model is Config:
        keys += tuple(FOREIGN_KEYS) + tuple(SEED_RENAMES)
    if model is Threshold:
        keys += ("at",)
    return keys


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``X | None`` or ``tuple[X, ...]``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_in(argument)
        if found is not None:
            return found
    return None


def _suggestion(key: str, valid: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


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
