"""Daemon logging through the stdlib ``logging`` module: one text line or JSON object per record."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from certvigil.output.safe_text import json_visible, visible

LOGGER_NAME = "certvigil"
"""The logger every daemon record goes through."""

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is
# written as a field of its own.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))
) | {"message", "asctime", "taskName"}


_HANDLER_NAME = "certvigil-daemon"


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record, by name."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRIBUTES}


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``msg`` and the extras."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record_fields(record).items():
            document[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        # JSON escapes C0 controls itself; C1, bidi and invisible characters become
        # \uXXXX escapes too, so that a log read in a terminal cannot act on it.
        return json_visible(json.dumps(document, ensure_ascii=False, sort_keys=False))


class TextFormatter(logging.Formatter):
    """``2026-11-22T03:58:01.123Z info certvigil.daemon: message key=value …``.

    A record is one line: the message and the values, which may hold text from
    certificates and servers, show control, bidi and invisible characters as escapes
    (``\\n``, ``\\x1b``, ``\\u202e``). A traceback follows on lines of its own.
    """

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={visible(str(v))}" for k, v in record_fields(record).items())
        line = f"{_timestamp(record)} {record.levelname.lower()} {record.name}: "
        line += visible(record.getMessage())
        if extras:
            line += f" {extras}"
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            line += "\n" + "\n".join(visible(part) for part in trace.split("\n"))
        return line


def configure_logging(
    *, format: str, level: str, file: Path | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """Send the ``certvigil`` logger's records to stderr or a file, as text or JSON.

    Replaces a handler installed by an earlier call, so that a test or a restart does
    not write each record twice.

    Args:
        format: ``"text"`` or ``"json"``.
        level: ``"debug"``, ``"info"``, ``"warning"`` or ``"error"``.
        file: A file to append to; ``None`` writes to ``stream``.
        stream: The stream used without a file; ``sys.stderr`` when ``None``.

    Returns:
        The handler installed.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if old.get_name() == _HANDLER_NAME:
            logger.removeHandler(old)
            old.close()
    handler: logging.Handler
    if file is not None:
        handler = logging.FileHandler(file, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLinesFormatter() if format == "json" else TextFormatter())
    handler.set_name(_HANDLER_NAME)
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
    return handler
