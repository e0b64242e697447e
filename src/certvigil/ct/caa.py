"""CAA policies (RFC 8659): which CAs a domain's DNS authorises to issue for it.

The relevant CAA record set of a name is the first non-empty one found climbing from the
name towards the root (``a.b.example.com``, ``b.example.com``, ``example.com``, ``com``).
From it:

* ``issue`` properties list the CAs (by their CAA identifier, a domain such as
  ``letsencrypt.org``) that may issue for the name; ``issuewild`` ones, when present,
  replace them for wildcard certificates. A value of ``;`` alone authorises no CA.
* no CAA record anywhere means any CA may issue.
* an unknown property with the critical flag (128) forbids all issuance.

This module is pure: the records come in as (flags, tag, value) and the lookup is in
``ct.fetch.caa``. ``CA_IDENTIFIERS`` maps the CAA identifiers of the large public CAs to
the organisation in their certificates' issuer names, so that a certificate seen in CT
can be checked against a domain's CAA without a network call.
"""

from __future__ import annotations

from dataclasses import dataclass

#: CAA identifiers (as CAs publish them in their CPS and in CCADB) → the issuer
#: organisation name of their certificates, lower case.
CA_IDENTIFIERS: dict[str, str] = {
    "letsencrypt.org": "let's encrypt",
    "pki.goog": "google trust services",
    "digicert.com": "digicert",
    "symantec.com": "digicert",
    "geotrust.com": "digicert",
    "rapidssl.com": "digicert",
    "thawte.com": "digicert",
    "sectigo.com": "sectigo",
    "comodoca.com": "sectigo",
    "comodo.com": "sectigo",
    "usertrust.com": "sectigo",
    "globalsign.com": "globalsign",
    "amazon.com": "amazon",
    "amazontrust.com": "amazon",
    "amazonaws.com": "amazon",
    "awstrust.com": "amazon",
    "godaddy.com": "godaddy",
    "starfieldtech.com": "starfield",
    "entrust.net": "entrust",
    "affirmtrust.com": "entrust",
    "buypass.com": "buypass",
    "buypass.no": "buypass",
    "ssl.com": "ssl.com",
    "zerossl.com": "zerossl",
    "certum.pl": "certum",
    "certum.eu": "certum",
    "harica.gr": "harica",
    "actalis.it": "actalis",
    "trust-provider.com": "sectigo",
    "microsoft.com": "microsoft",
    "apple.com": "apple",
}

CRITICAL_FLAG = 128
_KNOWN_TAGS = frozenset(
    {"issue", "issuewild", "iodef", "issuemail", "contactemail", "contactphone"}
)


@dataclass(frozen=True, slots=True)
class CaaRecord:
    """One CAA record.

    Attributes:
        flags: The flags octet (128: critical).
        tag: The property tag, lower case (``issue``, ``issuewild``, ``iodef``…).
        value: The property value as text (non-UTF-8 bytes replaced).
    """

    flags: int
    tag: str
    value: str


@dataclass(frozen=True, slots=True)
class CaaPolicy:
    """The CAA policy that applies to a name.

    Attributes:
        name: The name asked about (normalised).
        found_at: The name whose CAA record set applies, or ``None`` when there is none
            up to the top-level domain (any CA may issue).
        records: That record set.
    """

    name: str
    found_at: str | None
    records: tuple[CaaRecord, ...]

    @property
    def issue(self) -> tuple[str, ...]:
        """The CA identifiers of the ``issue`` properties (``()``: no CA, or no property)."""
        return _identifiers(self.records, "issue")

    @property
    def issuewild(self) -> tuple[str, ...]:
        """The CA identifiers that may issue wildcards (``issuewild``, else ``issue``)."""
        if any(r.tag == "issuewild" for r in self.records):
            return _identifiers(self.records, "issuewild")
        return self.issue

    @property
    def has_critical_unknown(self) -> bool:
        """Whether a critical property this code does not know forbids all issuance."""
        return any(r.flags & CRITICAL_FLAG and r.tag not in _KNOWN_TAGS for r in self.records)

    def _allowed(self, wildcard: bool) -> tuple[str, ...] | None:
        """The identifiers allowed, or ``None`` when the record set allows any CA."""
        tag = "issue"
        if wildcard and any(r.tag == "issuewild" for r in self.records):
            tag = "issuewild"
        if not any(r.tag == tag for r in self.records):
            return None  # the record set restricts something else (iodef only, say)
        return self.issuewild if wildcard else self.issue

    def permits(self, ca_identifier: str, *, wildcard: bool = False) -> bool:
        """Whether the CA with this CAA identifier may issue for the name.

        Args:
            ca_identifier: The CA's CAA identifier (``letsencrypt.org``).
            wildcard: The certificate is a wildcard one.
        """
        if self.found_at is None:
            return True
        if self.has_critical_unknown:
            return False
        allowed = self._allowed(wildcard)
        return allowed is None or ca_identifier.strip().lower().rstrip(".") in allowed

    def permits_issuer_organisation(
        self, organisation: str, *, wildcard: bool = False
    ) -> bool | None:
        """Whether a CA known by its issuer organisation name may issue for the name.

        Returns:
            ``True`` or ``False``; ``None`` when the record set names only CAs whose
            identifiers are not in ``CA_IDENTIFIERS`` (the caller cannot tell).
        """
        if self.found_at is None:
            return True
        if self.has_critical_unknown:
            return False
        allowed = self._allowed(wildcard)
        if allowed is None:
            return True
        wanted = organisation.strip().lower()
        known = [CA_IDENTIFIERS[i] for i in allowed if i in CA_IDENTIFIERS]
        if any(org in wanted for org in known):
            return True
        if len(known) < len(allowed):
            return None
        return False


def parse_issuer_value(value: str) -> str:
    """The CA identifier of an ``issue``/``issuewild`` value (``""``: no CA).

    ``letsencrypt.org; accounturi=https://…`` gives ``letsencrypt.org``; ``;`` gives ``""``.
    """
    identifier = value.split(";", 1)[0].strip().lower().rstrip(".")
    if len(identifier) > 253 or any(c.isspace() or not c.isprintable() for c in identifier):
        return ""
    return identifier


def _identifiers(records: tuple[CaaRecord, ...], tag: str) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for record in records:
        if record.tag == tag:
            identifier = parse_issuer_value(record.value)
            if identifier:
                found[identifier] = None
    return tuple(found)


def caa_record(flags: int, tag: bytes | str, value: bytes | str) -> CaaRecord:
    """A ``CaaRecord`` from wire-level fields (tag lower-cased, bytes decoded leniently)."""
    tag_text = tag.decode("ascii", "replace") if isinstance(tag, bytes) else tag
    value_text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return CaaRecord(flags & 0xFF, tag_text.lower()[:255], value_text[:1024])


def climb(name: str) -> tuple[str, ...]:
    """The names whose CAA records are looked up for ``name``, most specific first.

    A wildcard's ``*.`` is dropped (CAA is looked up at the base name). The root is
    never included.
    """
    labels = name.removeprefix("*.").rstrip(".").split(".")
    return tuple(".".join(labels[i:]) for i in range(len(labels)) if labels[i])
