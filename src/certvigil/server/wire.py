"""What an agent sends for one endpoint, and how the server turns it back into a judgement.

An item is the raw observation document (``certvigil.observation/1``, see
``certvigil.observed.codec``; CRLs inline) with the endpoint's labels in an extra
``tags`` field; never the agent's verdict. The server judges it itself
(``certvigil.analysis.judge``) with the trust settings the agent sent, so that one
judgement rule applies to every network. ``item_from_report`` is the agent's half,
``judge_item`` the server's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from certvigil.analysis.judge import judge
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.errors import ObservationFormatError
from certvigil.observed.codec import observation_from_dict, observation_to_dict
from certvigil.observed.endpoint import EndpointObservation

MAX_HOST = 255
MAX_TAGS = 32
MAX_TAG = 100


class ItemError(ValueError):
    """An item that cannot be read; the message names the field."""


def item_from_report(report: EndpointReport, *, tags: Sequence[str] = ()) -> dict[str, Any]:
    """The item an agent sends for one scanned endpoint, with the endpoint's labels.

    Raises:
        ValueError: The report carries no observation (not made by the scanner).
    """
    if report.observed is None:
        raise ValueError(f"{report.target}: the report carries no observation to send")
    return {**observation_to_dict(report.observed), "tags": list(tags)}


def tags_from_item(item: Any) -> tuple[str, ...] | None:
    """The endpoint's labels an item carries, ``None`` when it carries none.

    Raises:
        ItemError: Too many, too long, or not strings.
    """
    tags = item.get("tags") if isinstance(item, dict) else None
    if tags is None:
        return None
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise ItemError(f"tags: a list of at most {MAX_TAGS} strings")
    for index, tag in enumerate(tags):
        if not isinstance(tag, str) or not 0 < len(tag) <= MAX_TAG or not tag.isprintable():
            raise ItemError(f"tags[{index}]: a printable string of 1 to {MAX_TAG} characters")
    return tuple(sorted(set(tags)))


def observation_from_item(item: Any) -> EndpointObservation:
    """The raw observation in an item.

    Raises:
        ItemError: Not an observation document, naming the field.
    """
    if not isinstance(item, dict):
        raise ItemError("item: not a JSON object")
    document = {k: v for k, v in item.items() if k != "tags"}
    try:
        observation = observation_from_dict(document)
    except (ObservationFormatError, RecursionError) as exc:
        raise ItemError(str(exc)) from None
    host = observation.target.host
    if len(host) > MAX_HOST or not host.isprintable() or " " in host:
        raise ItemError(f"observation.target.host: not a host name or address ({MAX_HOST} max)")
    return observation


def judge_item(item: Any, *, now: datetime, trust: TrustStore) -> EndpointReport:
    """The server's judgement of one item.

    Raises:
        ItemError: The item cannot be read.
    """
    return judge(observation_from_item(item), now, trust)
