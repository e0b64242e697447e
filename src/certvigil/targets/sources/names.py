"""Names read from DNS data, and their selection by glob patterns and wildcard policy."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsName:
    """An owner name that resolves to an address, as found in DNS data.

    Attributes:
        name: The absolute name, lower-case, without the final dot (``www.example.org``);
            a wildcard owner keeps its ``*`` label (``*.apps.example.org``).
        rdtypes: The address-bearing record types it owns (``A``, ``AAAA``, ``CNAME``,
            ``ALIAS``), sorted.
        source: The file it came from.
        line: The line of its first record in ``source``; ``None`` when unknown.
    """

    name: str
    rdtypes: tuple[str, ...]
    source: str
    line: int | None = None

    @property
    def is_wildcard(self) -> bool:
        """Whether the owner is a wildcard (``*.example.org``)."""
        return self.name == "*" or self.name.startswith("*.")


@dataclass(frozen=True, slots=True, kw_only=True)
class NameSelection:
    """Which names of a DNS source become targets.

    Attributes:
        include: Glob patterns (``fnmatch``: ``*`` matches dots too, so ``*.example.org``
            covers every name below ``example.org``); a name is kept when it matches one.
            Empty keeps every name.
        exclude: Glob patterns; a name that matches one is dropped, even when included.
        probe_wildcards: Scan a wildcard owner through a concrete name under it;
            ``False`` drops wildcard owners.
        wildcard_label: The label that replaces ``*`` in that concrete name.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    probe_wildcards: bool = True
    wildcard_label: str = "wildcard-probe"


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(name, pattern.lower().rstrip(".")) for pattern in patterns)


def select_names(names: Iterable[DnsName], selection: NameSelection) -> tuple[str, ...]:
    """The host names to scan, in first-seen order, without duplicates.

    Patterns are matched against the owner name as written in the data, so that
    ``exclude: ["*.dev.example.org"]`` also drops the wildcard ``*.dev.example.org``.
    Names with a label that starts with ``_`` (``_acme-challenge``, ``_dmarc``,
    ``selector._domainkey``) are dropped: RFC 8552 reserves such labels for attributes
    of the name above them, never hosts. A wildcard owner ``*.apps.example.org``
    cannot be connected to as such: with
    ``probe_wildcards`` it becomes ``<wildcard_label>.apps.example.org``, a name the
    wildcard record answers for and that a wildcard certificate must cover.

    Args:
        names: Names read from a zone file or CSV export.
        selection: Include/exclude patterns and the wildcard policy.

    Returns:
        Host names ready to become targets.
    """
    seen: dict[str, None] = {}
    for entry in names:
        name = entry.name
        if any(label.startswith("_") for label in name.split(".")):
            continue
        if selection.include and not _matches(name, selection.include):
            continue
        if _matches(name, selection.exclude):
            continue
        if entry.is_wildcard:
            if not selection.probe_wildcards:
                continue
            name = selection.wildcard_label + name[1:]
        seen.setdefault(name, None)
    return tuple(seen)
