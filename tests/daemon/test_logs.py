"""Daemon log records as text lines or JSON objects."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from certvigil.daemon.logs import LOGGER_NAME, configure_logging


@pytest.fixture(autouse=True)
def restore_logger() -> Iterator[None]:
    """Put the certvigil logger back as it was, so other tests' log capture still works."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    for handler in list(logger.handlers):
        if handler not in saved[0]:
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def test_json_format_writes_one_object_per_record_with_its_fields() -> None:
    """Each record is one JSON line with ts, level, logger, msg and the extra fields."""
    stream = io.StringIO()
    configure_logging(format="json", level="info", stream=stream)
    log = logging.getLogger(f"{LOGGER_NAME}.daemon")
    log.info("cycle finished", extra={"due": 3, "interrupted": False})
    log.debug("not written at info")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["msg"] == "cycle finished"
    assert (record["level"], record["logger"]) == ("info", "certvigil.daemon")
    assert (record["due"], record["interrupted"]) == (3, False)
    assert record["ts"].endswith("Z")


def test_text_format_and_reconfiguring_do_not_duplicate_lines() -> None:
    """Text lines carry key=value extras; configuring twice leaves one handler."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(format="json", level="debug", stream=first)
    configure_logging(format="text", level="debug", stream=second)
    logging.getLogger(LOGGER_NAME).warning("stop requested", extra={"endpoint": "a:443"})
    assert first.getvalue() == ""
    (line,) = second.getvalue().splitlines()
    assert line.endswith(" warning certvigil: stop requested endpoint=a:443")


HOSTILE = "CN=[/bold]\x1b]0;owned\x07\n\u202eevil\x9b\u200b"


def test_text_format_shows_hostile_text_as_escapes() -> None:
    """Control, bidi and invisible characters in a message or a field become escapes."""
    stream = io.StringIO()
    configure_logging(format="text", level="info", stream=stream)
    log = logging.getLogger(f"{LOGGER_NAME}.daemon")
    log.info("alert opened: %s", HOSTILE, extra={"subject": HOSTILE})
    (line,) = stream.getvalue().splitlines()
    assert line.endswith(
        "alert opened: CN=[/bold]\\x1b]0;owned\\x07\\n\\u202eevil\\x9b\\u200b"
        " subject=CN=[/bold]\\x1b]0;owned\\x07\\n\\u202eevil\\x9b\\u200b"
    )


def test_json_format_escapes_hostile_text_and_keeps_it_exact() -> None:
    """A JSON log line holds no raw control or bidi character and decodes to the text."""
    stream = io.StringIO()
    configure_logging(format="json", level="info", stream=stream)
    logging.getLogger(LOGGER_NAME).info(HOSTILE, extra={"subject": HOSTILE})
    (line,) = stream.getvalue().splitlines()
    assert line.isprintable()
    assert "\\u202e" in line and "\\u009b" in line
    record = json.loads(line)
    assert record["msg"] == HOSTILE
    assert record["subject"] == HOSTILE
