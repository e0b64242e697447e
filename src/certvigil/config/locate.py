"""Find the line of a field in a configuration file's text, for error messages."""

from __future__ import annotations

import re
from collections.abc import Sequence

import yaml

FieldPath = tuple[str | int, ...]

SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (several times faster), else PyYAML's."""


def format_field_path(path: Sequence[str | int]) -> str:
    """``("targets", 3, "port")`` as ``targets[3].port``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def yaml_line_map(text: str) -> dict[FieldPath, int]:
    """The 1-based line of every key and sequence item in a YAML (or JSON) document.

    Args:
        text: The document; JSON is read as YAML's flow style.

    Returns:
        A map from field path to line; empty when the text does not compose as YAML.
    """
    try:
        root = yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError:
        return {}
    lines: dict[FieldPath, int] = {}
    if root is not None:
        _walk_node(root, (), lines)
    return lines


def _walk_node(node: yaml.Node, path: FieldPath, lines: dict[FieldPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key_path = (*path, str(key_node.value))
            lines[key_path] = key_node.start_mark.line + 1
            _walk_node(value_node, key_path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            item_path = (*path, index)
            lines[item_path] = item.start_mark.line + 1
            _walk_node(item, item_path, lines)


def json_line_map(text: str) -> dict[FieldPath, int]:
    """The 1-based line of every key and array item in a JSON document.

    JSON is composed as YAML flow style; tabs (which YAML refuses as indentation and JSON
    forbids inside strings) are read as spaces, which keeps every line number.
    """
    return yaml_line_map(text.replace("\t", " "))


def toml_line(text: str, path: FieldPath) -> int | None:
    """Best-effort 1-based line of ``path`` in a TOML document.

    Follows the path through table headers (``[scan]``, ``[[targets]]``, counting array
    tables for an index) and ``key =`` lines within the current table; stops at the
    last part it can find.

    Args:
        text: The TOML document.
        path: The field path, as in ``("targets", 3, "port")``.

    Returns:
        The line found for the longest prefix of ``path`` that could be located, or
        ``None`` when not even the first part is found.
    """
    lines = text.splitlines()
    cursor = -1
    found: int | None = None
    names: list[str] = []
    for part in path:
        if isinstance(part, int):
            header = _header_pattern(names, array=True)
            hits = [n for n, line in enumerate(lines) if header.match(line)]
            if part < len(hits):
                cursor = found = hits[part]
            continue
        names.append(part)
        hit = _first_match(lines, cursor + 1, _header_pattern(names, array=False))
        if hit is None:
            key = re.compile(r"""^\s*(""" + re.escape(part) + r"""|"[^"]*"|'[^']*')\s*=""")
            hit = _key_in_table(lines, cursor + 1, part, key)
        if hit is None:
            break
        cursor = found = hit
    return None if found is None else found + 1


def _header_pattern(names: Sequence[str], *, array: bool) -> re.Pattern[str]:
    dotted = r"\s*\.\s*".join(re.escape(name) for name in names)
    if array:
        return re.compile(r"^\s*\[\[\s*" + dotted + r"\s*\]\]")
    return re.compile(r"^\s*\[\[?\s*" + dotted + r"\s*\]\]?\s*(#.*)?$")


def _key_in_table(
    lines: Sequence[str], start: int, name: str, pattern: re.Pattern[str]
) -> int | None:
    for number in range(start, len(lines)):
        line = lines[number]
        if number > start and re.match(r"^\s*\[", line):
            return None
        match = pattern.match(line)
        if match is not None and match.group(1).strip("\"'") == name:
            return number
    return None


def _first_match(lines: Sequence[str], start: int, pattern: re.Pattern[str]) -> int | None:
    for number in range(start, len(lines)):
        if pattern.match(lines[number]):
            return number
    return None
