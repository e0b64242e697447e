"""Frozen analysis results as plain JSON values (for the deep-assessment output)."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready data.

    Dataclasses become objects (field order kept), enums their values, datetimes ISO
    8601 strings, tuples lists; ``bytes`` fields are left out (certificates and
    staples travel in the scan document's own fields).

    Args:
        value: A frozen result, or anything nested in one.

    Returns:
        Dicts, lists, strings, numbers, booleans and ``None`` only.
    """
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not isinstance(getattr(value, f.name), bytes | bytearray)
        }
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value
