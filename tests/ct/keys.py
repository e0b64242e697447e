"""The log keys the real test data is signed with, taken from the real log lists."""

from __future__ import annotations

from functools import cache

from certvigil.ct.log_list import CtLog, parse_log_list
from tests.ct.conftest import data


@cache
def _logs() -> tuple[CtLog, ...]:
    current = parse_log_list(data("loglist/log_list.json"), source="log_list.json").logs
    every = parse_log_list(data("loglist/all_logs_list.json"), source="all_logs_list.json").logs
    return current + every


def log_key(description: str) -> bytes:
    """The DER key of the first listed log whose description contains ``description``."""
    return next(log.key for log in _logs() if description in log.description)
