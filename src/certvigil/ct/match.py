"""The watch list: which watched domains a certificate's names fall under, by hashed lookups.

A watched domain ``example.com`` covers the name itself and every name below it, the
way certspotter's ``.example.com`` does. Matching never loops over the watched domains:

* each name (lower-case A-labels, trailing dot removed; see ``names.normalize_name``) is
  walked label by label from the left, and each suffix that starts at a label boundary
  (``a.b.example.com``, ``b.example.com``, ``example.com``…) is looked up in a dict of
  watched domains. ``notexample.com`` yields ``notexample.com`` and ``com``, never
  ``example.com``. The walk stops once the suffix has fewer labels than the shortest
  watched domain, so it costs at most a handful of lookups per name.
* a wildcard ``*.example.com`` covers every name one label below ``example.com``, so it
  also concerns a watch on ``a.example.com``: the set of watched domains is indexed by
  parent as well, and ``*.P`` looks ``P`` up there (the other direction of wildcards).
  A wildcard is matched like its base name otherwise (``*.example.com`` is under
  ``example.com``).

Cutting the walk at the registrable domain (the public suffix list) would save one or
two lookups per name and needs a list that ages; the label-count bound gives the same
cost without it. A broad watch (a public suffix such as ``co.uk``) is not refused here:
it matches everything below it, as written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from certvigil.ct.errors import WatchListError
from certvigil.ct.names import normalize_name


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A certificate name that falls under a watched domain.

    Attributes:
        name: The certificate's name (normalised).
        watched: The watched domain (normalised) it falls under.
        via_wildcard: The name is a wildcard one label above the watched domain
            (``*.example.com`` for a watch on ``a.example.com``).
    """

    name: str
    watched: str
    via_wildcard: bool = False


class WatchList:
    """A set of watched domains, indexed for hashed lookups."""

    __slots__ = ("_by_parent", "_domains", "_min_labels")

    def __init__(self, domains: Iterable[str]) -> None:
        """Index ``domains``.

        Raises:
            WatchListError: A domain is not a host name, or is a wildcard.
        """
        self._domains: dict[str, None] = {}
        self._by_parent: dict[str, list[str]] = {}
        for raw in domains:
            name = normalize_name(raw)
            if name is None:
                raise WatchListError(raw, "not a domain name")
            if name.startswith("*"):
                raise WatchListError(raw, "a watched domain covers its subdomains; drop the *.")
            if name in self._domains:
                continue
            self._domains[name] = None
            parent = name.partition(".")[2]
            if parent:
                self._by_parent.setdefault(parent, []).append(name)
        self._min_labels = min((d.count(".") + 1 for d in self._domains), default=1)

    def __len__(self) -> int:
        return len(self._domains)

    def __contains__(self, domain: object) -> bool:
        return domain in self._domains

    def watched_for(self, name: str) -> list[NameMatch]:
        """The watched domains a normalised name falls under (most specific first)."""
        found: list[NameMatch] = []
        base = name
        if name.startswith("*."):
            base = name[2:]
            for child in self._by_parent.get(base, ()):
                found.append(NameMatch(name, child, True))
        domains = self._domains
        labels_left = base.count(".") + 1
        position = 0
        while labels_left >= self._min_labels:
            suffix = base[position:] if position else base
            if suffix in domains:
                found.append(NameMatch(name, suffix, False))
            position = base.find(".", position) + 1
            if not position:
                break
            labels_left -= 1
        return found

    def match(self, names: Iterable[str]) -> list[NameMatch]:
        """Every (name, watched domain) pair for normalised ``names``."""
        found: list[NameMatch] = []
        for name in names:
            found += self.watched_for(name)
        return found
