"""Hypothesis strategies for every ``certvigil.observed`` record, built from its fields.

Built from the dataclasses' own type hints, so a field added to a model is generated
without touching this file (and the round trip then covers it).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from hypothesis import strategies as st

from certvigil.observed.endpoint import EndpointObservation
from certvigil.targets.target import StartTLS, Target

AWARE_TIMES = st.datetimes(
    min_value=datetime(1990, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2100, 1, 1),  # noqa: DTZ001
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))]
    ),
)
TARGETS = st.builds(
    Target,
    host=st.text(min_size=1, max_size=30),
    port=st.integers(1, 65535),
    sni=st.none() | st.text(max_size=30),
    starttls=st.none() | st.sampled_from(StartTLS),
)


def for_type(hint: Any) -> st.SearchStrategy[Any]:
    """A strategy for values of ``hint`` as the observation models use it."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return st.one_of(*(for_type(member) for member in typing.get_args(hint)))
    if hint is type(None):
        return st.none()
    if hint is Target:
        return TARGETS
    if hint is datetime:
        return AWARE_TIMES
    if hint is bytes:
        return st.binary(max_size=64)
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if hint is int:
        return st.integers(-(2**63), 2**63)
    if hint is bool:
        return st.booleans()
    if hint is str:
        return st.text(max_size=20)
    if isinstance(hint, type) and issubclass(hint, Enum):
        return st.sampled_from(hint)
    if typing.get_origin(hint) is tuple:
        return st.lists(for_type(typing.get_args(hint)[0]), max_size=3).map(tuple)
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = {f.name: for_type(hints[f.name]) for f in dataclasses.fields(hint)}
        return st.builds(hint, **fields)
    raise TypeError(f"no strategy for {hint!r}")


OBSERVATIONS: st.SearchStrategy[EndpointObservation] = for_type(EndpointObservation)
