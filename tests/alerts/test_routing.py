"""Pure route matching: severity floor, tags, kinds, actions; URLs kept out of keys and logs."""

from __future__ import annotations

import pytest

from certvigil.alerts.routing import AlertRoute, matching_routes, redact_url, routes_from_config
from certvigil.alerts.rules import AlertKind, EventAction
from certvigil.analysis.model import Severity
from certvigil.config import Route


def _match(
    routes,
    *,
    severity=Severity.WARNING,
    kind=AlertKind.UNTRUSTED,
    action=EventAction.OPEN,
    tags=(),
):
    chosen = matching_routes(routes, kind=kind, severity=severity, action=action, tags=tags)
    return [r.name for r in chosen]


def test_severity_floor_filters_events() -> None:
    """A route gets events at or above its minimum severity only."""
    routes = (
        AlertRoute(name="all", url="json://h/a", min_severity=Severity.INFO),
        AlertRoute(name="warn", url="json://h/w"),
        AlertRoute(name="crit", url="json://h/c", min_severity=Severity.CRITICAL),
    )
    assert _match(routes, severity=Severity.INFO) == ["all"]
    assert _match(routes, severity=Severity.WARNING) == ["all", "warn"]
    assert _match(routes, severity=Severity.CRITICAL) == ["all", "warn", "crit"]


def test_tags_kinds_and_actions_narrow_a_route() -> None:
    """Tags need one in common; kinds and actions must include the event's."""
    route = AlertRoute(
        name="n",
        url="json://h/n",
        tags=frozenset({"prod", "pci"}),
        kinds=frozenset({AlertKind.EXPIRED}),
        actions=frozenset({EventAction.OPEN}),
    )
    assert _match((route,), kind=AlertKind.EXPIRED, tags=("pci",)) == ["n"]
    assert _match((route,), kind=AlertKind.EXPIRED, tags=("lab",)) == []
    assert _match((route,), kind=AlertKind.UNTRUSTED, tags=("prod",)) == []
    resolve = EventAction.RESOLVE
    assert _match((route,), kind=AlertKind.EXPIRED, tags=("prod",), action=resolve) == []


def test_duplicate_routes_match_once() -> None:
    """The same name and URL configured twice yields one delivery route."""
    route = AlertRoute(name="x", url="json://h/x")
    assert _match((route, route)) == ["x"]


def test_route_key_hides_the_url() -> None:
    """The stored route key is the name and a digest; no token from the URL appears."""
    route = AlertRoute(name="slack", url="slack://TOKENA/TOKENB/TOKENC")
    assert route.key.startswith("slack#") and "TOKEN" not in route.key
    assert route.key != AlertRoute(name="slack", url="slack://OTHER/T/K").key


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mailtos://user:secret@smtp.example.org?to=a@b", "mailtos://smtp.example.org/…"),
        ("slack://TokenA/TokenB/TokenC", "slack://…"),
        ("tgram://123456789:AAbbCC/42", "tgram://…"),
        ("json://[::1]:8080/x", "json://[::1]:8080/…"),
        ("mailto://localhost:2525?to=a@b", "mailto://localhost:2525/…"),
        ("json://127.0.0.1:8080/hook?+X=1", "json://127.0.0.1:8080/…"),
        ("no-scheme", "(not a URL)"),
    ],
)
def test_redact_url_keeps_scheme_and_host(url: str, shown: str) -> None:
    """Redaction keeps scheme and a real host, drops tokens, credentials, paths, queries."""
    assert redact_url(url) == shown


def test_routes_from_config_reads_configured_routes() -> None:
    """Configured routes become alert routes, unnamed ones named after their scheme."""
    configured = (
        Route(url="json://h/a", tags=("prod",)),
        Route(url="mailto://h?to=a@b", name="mail", min_severity=Severity.CRITICAL),
    )
    routes = routes_from_config(configured)
    assert [(r.name, r.min_severity, r.tags) for r in routes] == [
        ("json", Severity.WARNING, frozenset({"prod"})),
        ("mail", Severity.CRITICAL, frozenset()),
    ]


def test_route_refuses_a_url_without_scheme() -> None:
    """A route URL without scheme:// is refused, naming the route."""
    with pytest.raises(ValueError, match='route "bad"'):
        AlertRoute(name="bad", url="hooks.example.org/x")


def test_mask_secrets_hides_every_secret_part_of_a_channel_url() -> None:
    """Passwords, tokens in host or path, and query values never survive into an error text."""
    from certvigil.alerts.routing import mask_secrets

    url = "slack://T0KENA/B0KENB/C0KENCsecret/#ops?footer=n0-f00ter"
    text = f"Failed to send to {url}: T0KENA/B0KENB rejected (C0KENCsecret, n0-f00ter)"
    masked = mask_secrets(text, url)
    assert not any(s in masked for s in ("T0KENA", "B0KENB", "C0KENCsecret", "n0-f00ter"))
    mail = "mailtos://ops:Hunter2pw@smtp.example.test?to=x%40example.test"
    masked = mask_secrets("login ops:Hunter2pw failed for x@example.test", mail)
    assert "Hunter2pw" not in masked and "x@example.test" not in masked
    assert "smtp.example.test" in mask_secrets("cannot reach smtp.example.test", mail)
