"""Look-alike domains: names made to pass for a watched domain, found by hashed lookups.

``LookalikeIndex.build(domains)`` takes each watched domain's *registrable domain* (the
label under its public suffix: ``shop.example.co.uk`` → ``example.co.uk``, by the public
suffix list that ``tldextract`` bundles, private suffixes such as ``github.io``
included, and never fetched) and indexes two things:

* **permutations**, made by ``dnstwist``'s ``Fuzzer``, the reference tool for this:
  omission, transposition, keyboard replacement and insertion, ASCII homoglyphs
  (``examp1e``, ``exarnple``), bitsquatting, hyphenation, repetition, vowel swap,
  addition, plural, subdomain (``exa.mple.com``), Cyrillic look-alikes, TLD swaps and a
  few others (``various``). Each is a key of a dict: permutation → (technique, domain
  imitated). About 300 per domain, made in 6 to 45 ms.
* **confusable skeletons** (``ct.skeleton``, UTS #39): the skeleton of each registrable
  domain → the domain. dnstwist's own Unicode homoglyph fuzzer is not used: it makes two
  rounds of substitutions from a small table, about 5,000 names per domain, where one
  skeleton lookup catches every combination of every confusable in Unicode's table.

``match(name)`` then walks the name's suffixes at label boundaries, as the watch list
does (``a.b.examp1e.com``, ``b.examp1e.com``, ``examp1e.com``…), and looks each up:
first in the set of the watched registrable domains (a hit means the name is the real
domain or below it: never a look-alike), then in the permutations, then (on the folded
name) in the skeletons. A handful of dict lookups and one ``str.translate`` per name,
never a loop over the watched domains or their permutations.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from certvigil.ct.errors import WatchListError
from certvigil.ct.names import normalize_name, to_unicode
from certvigil.ct.skeleton import fold_host_name, skeleton


class Technique(StrEnum):
    """How a look-alike was made (dnstwist's fuzzer names, plus ``confusable``)."""

    ADDITION = "addition"
    BITSQUATTING = "bitsquatting"
    CYRILLIC = "cyrillic"
    HOMOGLYPH = "homoglyph"
    HYPHENATION = "hyphenation"
    INSERTION = "insertion"
    OMISSION = "omission"
    PLURAL = "plural"
    REPETITION = "repetition"
    REPLACEMENT = "replacement"
    SUBDOMAIN = "subdomain"
    TRANSPOSITION = "transposition"
    VOWEL_SWAP = "vowel-swap"
    TLD_SWAP = "tld-swap"
    VARIOUS = "various"
    CONFUSABLE = "confusable"


#: The order a permutation made by several techniques is credited in: the most
#: specific explanation first.
TECHNIQUES: tuple[Technique, ...] = (
    Technique.HOMOGLYPH,
    Technique.CYRILLIC,
    Technique.TRANSPOSITION,
    Technique.OMISSION,
    Technique.REPETITION,
    Technique.VOWEL_SWAP,
    Technique.REPLACEMENT,
    Technique.INSERTION,
    Technique.BITSQUATTING,
    Technique.HYPHENATION,
    Technique.SUBDOMAIN,
    Technique.PLURAL,
    Technique.ADDITION,
    Technique.TLD_SWAP,
    Technique.VARIOUS,
    Technique.CONFUSABLE,
)

#: Top-level domains a TLD swap tries by default: the generic ones phishing kits favour
#: and the large country codes.
DEFAULT_SWAP_TLDS: tuple[str, ...] = (
    "com", "net", "org", "info", "biz", "io", "co", "app", "dev", "online", "site",
    "xyz", "top", "shop", "store", "live", "support", "services", "me", "cc", "us",
    "uk", "co.uk", "de", "fr", "eu", "nl", "ru", "cn", "in", "com.br", "com.au",
)  # fmt: skip


# Label folds remembered at most (about 10 MB); the memo is emptied when full.
_FOLD_CACHE_SIZE = 65536


@dataclass(frozen=True, slots=True)
class LookalikeMatch:
    """A certificate name that imitates a watched domain.

    Attributes:
        name: The certificate's name, normalised (A-labels; a wildcard keeps its ``*.``).
        lookalike: The part of the name that imitates (``examp1e.com`` for
            ``login.examp1e.com``), as A-labels.
        imitated: The watched registrable domain it imitates (``example.com``).
        technique: How the look-alike differs from it.
    """

    name: str
    lookalike: str
    imitated: str
    technique: Technique


@dataclass(frozen=True, slots=True)
class Registrable:
    """A name split at its public suffix.

    Attributes:
        domain: The registrable domain (``example.co.uk``), or ``""`` when the name is
            a public suffix itself or has no known suffix.
        label: Its first label (``example``), or ``""``.
        suffix: The public suffix (``co.uk``), or ``""``.
    """

    domain: str
    label: str
    suffix: str


@lru_cache(maxsize=1)
def _extractor() -> Any:
    # Imported here: tldextract pulls in requests, which the matching never needs.
    import tldextract

    # No URL and no cache directory: the public suffix list is the snapshot shipped
    # inside the package, so nothing is fetched or written, ever.
    return tldextract.TLDExtract(
        suffix_list_urls=(),
        cache_dir=None,
        fallback_to_snapshot=True,
        include_psl_private_domains=True,
    )


@lru_cache(maxsize=1)
def public_suffixes() -> frozenset[str]:
    """Every public suffix of the bundled list (ICANN and private sections), as A-labels."""
    return frozenset(_extractor().tlds)


def registrable(name: str) -> Registrable:
    """Split a normalised host name at its public suffix (the bundled list, no network)."""
    result = _extractor()(name.removeprefix("*."))
    if not result.domain or not result.suffix:
        return Registrable("", "", result.suffix)
    return Registrable(f"{result.domain}.{result.suffix}", result.domain, result.suffix)


def _permutations(
    reg: Registrable, techniques: Sequence[Technique], tlds: Sequence[str]
) -> dict[str, Technique]:
    """dnstwist's permutations of a registrable domain, credited by ``TECHNIQUES`` order."""
    import dnstwist  # a large CLI module (190 ms to import): only when building

    fuzzers = [t.value for t in techniques if t is not Technique.CONFUSABLE]
    if not fuzzers:
        return {}
    fuzzer = dnstwist.Fuzzer(reg.domain, tld_dictionary=list(tlds))
    # dnstwist splits the name with a short built-in TLD list; the PSL split is better.
    fuzzer.subdomain, fuzzer.domain, fuzzer.tld = "", to_unicode(reg.label), reg.suffix
    # Its Unicode homoglyphs are covered by the skeletons (module docstring): keep the
    # ASCII ones (1 for l, rn for m, vv for w…) only.
    fuzzer.glyphs_unicode = {}
    fuzzer.glyphs_idn_by_tld = {}
    fuzzer.generate(fuzzers=fuzzers)
    rank = {t.value: i for i, t in enumerate(TECHNIQUES)}
    found: dict[str, Technique] = {}
    for permutation in sorted(fuzzer.domains, key=lambda p: rank.get(p["fuzzer"], 99)):
        name = normalize_name(str(permutation["domain"]))
        if name is None or name in found or permutation["fuzzer"] not in rank:
            continue
        found[name] = Technique(permutation["fuzzer"])
    return found


class LookalikeIndex:
    """Permutations and skeletons of the watched domains, indexed for hashed lookups.

    Build it once with ``LookalikeIndex.build`` (a few seconds for 1,000 domains) and
    share it: ``match`` only reads the tables (it remembers the folds of the labels it
    has seen, a bounded memo).
    """

    __slots__ = (
        "_folds",
        "_max_labels",
        "_min_labels",
        "_own",
        "_permutations",
        "_skeletons",
        "skipped",
    )

    def __init__(
        self,
        own: dict[str, None],
        permutations: dict[str, tuple[Technique, str]],
        skeletons: dict[str, str],
        skipped: tuple[str, ...] = (),
    ) -> None:
        """Use ``build``; this takes the finished tables."""
        self._own = own
        self._permutations = permutations
        self._skeletons = skeletons
        self.skipped = skipped
        self._folds: dict[str, str] = {}
        keys = [*own, *permutations, *skeletons]
        self._min_labels = min((k.count(".") + 1 for k in keys), default=1)
        self._max_labels = max((k.count(".") + 1 for k in keys), default=0)

    @classmethod
    def build(
        cls,
        domains: Iterable[str],
        *,
        techniques: Iterable[Technique] = TECHNIQUES,
        swap_tlds: Iterable[str] = DEFAULT_SWAP_TLDS,
    ) -> LookalikeIndex:
        """Index the look-alikes of ``domains``.

        Args:
            domains: Watched domains (any form ``names.normalize_name`` accepts); each
                stands for its registrable domain.
            techniques: The techniques to index (``CONFUSABLE`` adds the skeletons).
            swap_tlds: The suffixes a TLD swap tries.

        Returns:
            The index. Domains that are a public suffix themselves (``co.uk``) have no
            registrable domain to imitate: they are listed in ``skipped``.

        Raises:
            WatchListError: A domain is not a host name, or is a wildcard.
        """
        chosen = tuple(t for t in TECHNIQUES if t in set(techniques))
        tlds = tuple(dict.fromkeys(t.strip(".").lower() for t in swap_tlds if t.strip(".")))
        own: dict[str, None] = {}
        skipped: list[str] = []
        for raw in domains:
            name = normalize_name(raw)
            if name is None:
                raise WatchListError(raw, "not a domain name")
            if name.startswith("*"):
                raise WatchListError(raw, "a watched domain covers its subdomains; drop the *.")
            reg = registrable(name)
            if not reg.domain:
                skipped.append(name)
                continue
            own[reg.domain] = None
        suffixes = public_suffixes()
        permutations: dict[str, tuple[Technique, str]] = {}
        skeletons: dict[str, str] = {}
        for domain in own:
            reg = registrable(domain)
            for name, technique in _permutations(reg, chosen, tlds).items():
                if name not in own and name not in suffixes and name not in permutations:
                    permutations[name] = (technique, domain)
            if Technique.CONFUSABLE in chosen:
                skeletons.setdefault(skeleton(to_unicode(domain)), domain)
        return cls(own, permutations, skeletons, tuple(skipped))

    def __len__(self) -> int:
        """The number of permutations indexed (skeletons not counted)."""
        return len(self._permutations)

    @property
    def imitated(self) -> tuple[str, ...]:
        """The registrable domains whose look-alikes are indexed."""
        return tuple(self._own)

    def _fold_label(self, label: str) -> str:
        folded = self._folds.get(label)
        if folded is None:
            folded = fold_host_name(to_unicode(label) if label.startswith("xn--") else label)
            if len(self._folds) >= _FOLD_CACHE_SIZE:
                self._folds.clear()
            self._folds[label] = folded
        return folded

    def match(self, name: str) -> LookalikeMatch | None:
        """The watched domain a normalised name imitates, or ``None``.

        A name that is a watched registrable domain or lies below one never matches,
        whatever it looks like.
        """
        base = name[2:] if name.startswith("*.") else name
        # The suffixes that could be keys: at most as many labels as the longest key,
        # at least as many as the shortest; built from the right, shortest first.
        parts = base.rsplit(".", self._max_labels)
        if len(parts) > self._max_labels:
            del parts[0]
        candidates: list[str] = []
        suffix = ""
        for label in reversed(parts):
            suffix = f"{label}.{suffix}" if suffix else label
            candidates.append(suffix)
        candidates = candidates[self._min_labels - 1 :]
        own = self._own
        for suffix in candidates:
            if suffix in own:
                return None
        permutations = self._permutations
        for suffix in reversed(candidates):
            found = permutations.get(suffix)
            if found is not None:
                return LookalikeMatch(name, suffix, found[1], found[0])
        if not self._skeletons or not candidates:
            return None
        # Folding maps character by character and keeps dots, so each candidate's fold
        # is the folds of its labels joined; labels (com, org, a registrable label seen
        # in many certificates) repeat, and their folds are remembered.
        skeletons = self._skeletons
        folded = ""
        hit: tuple[str, str] | None = None
        for index, label in enumerate(reversed(parts)):
            piece = self._fold_label(label)
            if "." in piece:
                return None  # a fold that adds a label boundary cannot be mapped back
            folded = f"{piece}.{folded}" if folded else piece
            if index + 1 >= self._min_labels:
                imitated = skeletons.get(folded)
                if imitated is not None:
                    hit = (candidates[index + 1 - self._min_labels], imitated)
        if hit is not None and hit[0] != hit[1]:
            return LookalikeMatch(name, hit[0], hit[1], Technique.CONFUSABLE)
        return None

    def match_all(self, names: Iterable[str]) -> list[LookalikeMatch]:
        """The look-alike matches among normalised ``names`` (one per name at most)."""
        found = []
        for name in names:
            hit = self.match(name)
            if hit is not None:
                found.append(hit)
        return found
