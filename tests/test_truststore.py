"""Loading trust stores: Mozilla's via certifi, the system bundle, internal CA files."""

from __future__ import annotations

from pathlib import Path

import certifi
import pytest

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.errors import ConfigError
from certvigil.files.truststore import load_trust_store, system_bundle_paths

DATA = Path(__file__).resolve().parent / "data" / "certs"


def test_default_is_mozilla() -> None:
    """The default store holds certifi's roots, all public, ISRG Root X1 among them."""
    trust = load_trust_store()
    assert len(trust) == certifi.contents().count("BEGIN CERTIFICATE")
    assert trust.public_anchor_sha256 == trust.anchor_sha256
    assert "certifi" in trust.source
    subjects = {a.subject.rfc4514_string() for a in trust.anchors}
    assert "CN=ISRG Root X1,O=Internet Security Research Group,C=US" in subjects


def test_ca_file_adds_private_anchors(tmp_path: Path) -> None:
    """--ca-file adds its anchors to Mozilla's; they are not counted as public."""
    pki = ThrowawayPki.create()
    ca_file = tmp_path / "internal.pem"
    ca_file.write_bytes(pki.root.pem)
    default = load_trust_store()
    trust = load_trust_store(ca_files=[ca_file])
    assert len(trust) == len(default) + 1
    root_sha = pki.root.issued.sha256_hex
    assert root_sha in trust.anchor_sha256
    assert root_sha not in trust.public_anchor_sha256
    assert str(ca_file) in trust.source


def test_ca_file_only(tmp_path: Path) -> None:
    """Without the default set only the internal anchors are trusted."""
    ca_file = DATA / "letsencrypt" / "isrgrootx1.pem"
    trust = load_trust_store(ca_files=[ca_file], include_default=False)
    assert len(trust) == 1
    assert trust.public_anchor_sha256 == frozenset()


@pytest.mark.skipif(not system_bundle_paths(), reason="no system CA bundle on this machine")
def test_system_store() -> None:
    """The system bundle loads and is counted as public."""
    trust = load_trust_store(use_system=True, include_default=False)
    assert len(trust) > 10
    assert "system" in trust.source


def test_bad_ca_file(tmp_path: Path) -> None:
    """An unusable CA file is a configuration error naming it."""
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"bad\.pem: not a usable CA file"):
        load_trust_store(ca_files=[bad])


def test_no_anchors_refused() -> None:
    """Asking for no anchors at all is refused."""
    with pytest.raises(ConfigError, match="no anchors"):
        load_trust_store(include_default=False)
    with pytest.raises(ValueError, match="at least one anchor"):
        TrustStore.from_certificates([], source="nothing")


def test_duplicates_collapse() -> None:
    """The same anchor given twice is kept once."""
    pki = ThrowawayPki.create()
    trust = TrustStore.from_certificates([pki.root.certificate, pki.root.certificate], source="dup")
    assert len(trust) == 1
    issuer = pki.intermediate.certificate.issuer.public_bytes()
    assert trust.anchors_named(issuer) == (pki.root.certificate,)
