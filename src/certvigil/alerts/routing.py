"""Alert routes: which channel URL wants which alert events (pure matching)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from certvigil.alerts.rules import AlertKind, EventAction
from certvigil.analysis.model import Severity

ALL_ACTIONS: frozenset[EventAction] = frozenset(EventAction)
"""Opens, notices and resolutions: what a route gets unless told otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRoute:
    """One destination and the alert events it wants.

    Attributes:
        name: A label for logs and ``alerts list``; need not be unique.
        url: The channel URL: an apprise URL (``mailto://``, ``slack://``, ``json://``…)
            or a certvigil webhook (``webhook+https://…``, see ``channels.py``).
        min_severity: Events of alerts below this severity are not sent here.
        tags: Only events for endpoints carrying at least one of these tags; empty means
            every endpoint.
        kinds: Only these alert kinds; empty means every kind.
        actions: Which events: opening, informational notices, resolutions.
    """

    name: str
    url: str
    min_severity: Severity = Severity.WARNING
    tags: frozenset[str] = frozenset()
    kinds: frozenset[AlertKind] = frozenset()
    actions: frozenset[EventAction] = ALL_ACTIONS

    def __post_init__(self) -> None:
        scheme, sep, rest = self.url.partition("://")
        if not sep or not scheme or not rest:
            raise ValueError(f'route "{self.name}": "{redact_url(self.url)}" is not a URL')

    @property
    def key(self) -> str:
        """What the outbox stores as the delivery's route: name and a URL digest.

        The URL itself (which often carries a token or password) is never stored; the
        delivery worker finds the channel again by this key in the configured routes.
        """
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        return f"{self.name}#{digest}"

    def wants(
        self, *, kind: AlertKind, severity: Severity, action: EventAction, tags: Iterable[str]
    ) -> bool:
        """Whether an event with these properties goes through this route."""
        if action not in self.actions:
            return False
        if severity.rank < self.min_severity.rank:
            return False
        if self.kinds and kind not in self.kinds:
            return False
        return not self.tags or not self.tags.isdisjoint(tags)


def matching_routes(
    routes: Iterable[AlertRoute],
    *,
    kind: AlertKind,
    severity: Severity,
    action: EventAction,
    tags: Iterable[str],
) -> tuple[AlertRoute, ...]:
    """The routes that want an event, each route key once, in configuration order."""
    tag_set = frozenset(tags)
    chosen: dict[str, AlertRoute] = {}
    for route in routes:
        if route.key not in chosen and route.wants(
            kind=kind, severity=severity, action=action, tags=tag_set
        ):
            chosen[route.key] = route
    return tuple(chosen.values())


_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}|\d{1,3}(?:\.\d{1,3}){3}"
    r"|localhost|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$"
)


def redact_url(url: str) -> str:
    """``scheme://host`` of a URL, for messages: paths and credentials often hold secrets.

    The host is shown only when it looks like a host name or address: many apprise
    URLs carry a token where the host would be (``slack://TokenA/…``).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "(not a URL)"
    host = rest.split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}/…" if _HOST_RE.match(host) else f"{scheme}://…"


_MIN_SECRET_LEN = 4


def url_secrets(url: str) -> tuple[str, ...]:
    """The parts of a URL that may be secret, longest first: everything but the scheme,
    the user and password, each path segment and query value, and a host that does not
    look like one (apprise puts tokens there)."""
    from urllib.parse import unquote

    _scheme, sep, rest = url.partition("://")
    if not sep:
        return (url,) if len(url) >= _MIN_SECRET_LEN else ()
    parts: set[str] = {rest, url}
    before_query, _, query = rest.partition("?")
    authority, _, path = before_query.partition("/")
    userinfo, at, host = authority.rpartition("@")
    if at:
        parts.update(userinfo.split(":", 1))
    if not _HOST_RE.match(host):
        parts.add(host)
    parts.update(path.split("/"))
    for item in query.split("&"):
        parts.add(item.partition("=")[2])
    found = {p for p in parts if len(p) >= _MIN_SECRET_LEN}
    found |= {unquote(p) for p in found if len(unquote(p)) >= _MIN_SECRET_LEN}
    return tuple(sorted(found, key=len, reverse=True))


def mask_secrets(text: str, url: str) -> str:
    """``text`` with every part of ``url`` that may be secret replaced by ``***``.

    Errors of channel libraries (apprise's warnings, HTTP client errors) may quote the
    URL, its token or its password; this is applied to every error before it is logged
    or stored.
    """
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text


class ConfiguredRoute(Protocol):
    """The shape of ``certvigil.config.Route`` that :func:`routes_from_config` reads."""

    @property
    def url(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def min_severity(self) -> Severity: ...
    @property
    def tags(self) -> tuple[str, ...]: ...


def routes_from_config(routes: Iterable[ConfiguredRoute]) -> tuple[AlertRoute, ...]:
    """Alert routes from the ``alerts.routes`` of a configuration.

    Args:
        routes: Configured routes (URL, optional name, minimum severity, tags).

    Returns:
        One :class:`AlertRoute` each, named after the URL scheme when unnamed.
    """
    return tuple(
        AlertRoute(
            name=r.name or r.url.partition("://")[0],
            url=r.url,
            min_severity=r.min_severity,
            tags=frozenset(r.tags),
        )
        for r in routes
    )
