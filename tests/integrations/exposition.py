"""A strict parser of the Prometheus text exposition format 0.0.4, for tests.

Strict where Prometheus is: every sample's family has one TYPE line before its samples,
names and label names match the format's patterns, label values use only the three
escapes (``\\\\``, ``\\"``, ``\\n``), no label repeats and no series repeats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(ValueError):
    """The text is not valid exposition format."""


@dataclass
class Parsed:
    """What a text holds: types, help texts and series."""

    types: dict[str, str] = field(default_factory=dict)
    helps: dict[str, str] = field(default_factory=dict)
    series: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """The value of the series with exactly these labels."""
        return self.series[(name, frozenset(labels.items()))]

    def labels_of(self, name: str) -> list[dict[str, str]]:
        """The label sets of every series of ``name``."""
        return [dict(labels) for (n, labels) in self.series if n == name]


def _unescape(text: str, position: int, line_no: int) -> tuple[str, int]:
    """Read a quoted label value starting after the opening quote; (value, next index)."""
    out: list[str] = []
    i = position
    while i < len(text):
        char = text[i]
        if char == '"':
            return "".join(out), i + 1
        if char == "\\":
            if i + 1 >= len(text):
                break
            escaped = text[i + 1]
            if escaped not in '\\"n':
                raise ExpositionError(f"line {line_no}: bad escape \\{escaped}")
            out.append("\n" if escaped == "n" else escaped)
            i += 2
            continue
        if char == "\n":
            raise ExpositionError(f"line {line_no}: raw newline in a label value")
        out.append(char)
        i += 1
    raise ExpositionError(f"line {line_no}: unterminated label value")


def _family_of(name: str, types: dict[str, str]) -> str | None:
    if name in types:
        return name
    for suffix in ("_total", "_count", "_sum", "_bucket", "_created"):
        if name.endswith(suffix) and name[: -len(suffix)] in types:
            return name[: -len(suffix)]
    return None


def parse(text: str) -> Parsed:
    """Parse exposition text strictly.

    Raises:
        ExpositionError: The first violation, with its line number.
    """
    if not text.endswith("\n"):
        raise ExpositionError("the text must end with a newline")
    parsed = Parsed()
    for line_no, line in enumerate(text[:-1].split("\n"), start=1):
        if line.startswith(("# HELP ", "# TYPE ")):
            _, kind, rest = line.split(" ", 2)
            name, _, tail = rest.partition(" ")
            if not _NAME.fullmatch(name):
                raise ExpositionError(f"line {line_no}: bad metric name {name!r}")
            if kind == "TYPE":
                if tail not in _TYPES or name in parsed.types:
                    raise ExpositionError(f"line {line_no}: bad or repeated TYPE")
                if any(n == name for (n, _) in parsed.series):
                    raise ExpositionError(f"line {line_no}: TYPE after samples")
                parsed.types[name] = tail
            else:
                parsed.helps[name] = tail.replace("\\n", "\n").replace("\\\\", "\\")
            continue
        if line.startswith("#") or not line:
            raise ExpositionError(f"line {line_no}: unexpected line {line!r}")
        match = _NAME.match(line)
        if match is None:
            raise ExpositionError(f"line {line_no}: no metric name")
        name = match.group()
        if _family_of(name, parsed.types) is None:
            raise ExpositionError(f"line {line_no}: {name} has no TYPE line before it")
        i = match.end()
        labels: dict[str, str] = {}
        if i < len(line) and line[i] == "{":
            i += 1
            while line[i] != "}":
                label = _LABEL.match(line, i)
                if label is None or line[label.end() : label.end() + 2] != '="':
                    raise ExpositionError(f"line {line_no}: bad label at column {i}")
                if label.group() in labels:
                    raise ExpositionError(f"line {line_no}: repeated label {label.group()}")
                value, i = _unescape(line, label.end() + 2, line_no)
                labels[label.group()] = value
                if line[i] == ",":
                    i += 1
                elif line[i] != "}":
                    raise ExpositionError(f"line {line_no}: expected , or }} at column {i}")
            i += 1
        rest = line[i:]
        if not rest.startswith(" "):
            raise ExpositionError(f"line {line_no}: no space before the value")
        fields = rest.split()
        if len(fields) not in (1, 2):
            raise ExpositionError(f"line {line_no}: bad value part {rest!r}")
        try:
            value = float(fields[0])
        except ValueError:
            raise ExpositionError(f"line {line_no}: bad value {fields[0]!r}") from None
        key = (name, frozenset(labels.items()))
        if key in parsed.series:
            raise ExpositionError(f"line {line_no}: repeated series")
        parsed.series[key] = value
    return parsed
