"""Load the trust store: Mozilla's roots (certifi), the system's, and internal CA files.

``--ca-file`` *adds* anchors to the default Mozilla set: an organisation that runs an
internal CA usually also serves public certificates, and one scan must judge both.
To trust only the internal CA, pass ``include_default=False`` (``--no-default-ca``).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import certifi
from cryptography import x509

from certvigil.analysis.certificate import parse_certificate
from certvigil.analysis.trust import TrustStore
from certvigil.errors import CertificateLoadError, ConfigError
from certvigil.files.certificates import load_certificate_file

if TYPE_CHECKING:
    from certvigil.config.model import TrustSettings

__all__ = ["load_trust_store", "system_bundle_paths"]

# Where Debian/Ubuntu, RHEL/Fedora, SUSE and Alpine keep the system bundle, after
# whatever the local OpenSSL was built to use.
_SYSTEM_BUNDLES = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
)


def system_bundle_paths() -> tuple[Path, ...]:
    """The system CA bundle files that exist here, most authoritative first."""
    defaults = ssl.get_default_verify_paths()
    candidates = [p for p in (defaults.cafile, defaults.openssl_cafile) if p]
    candidates += _SYSTEM_BUNDLES
    seen: dict[Path, None] = {}
    for candidate in candidates:
        path = Path(candidate)
        if path.is_file():
            seen.setdefault(path.resolve(), None)
    return tuple(seen)


def load_trust_store(
    *,
    ca_files: Sequence[Path] = (),
    use_system: bool = False,
    include_default: bool = True,
) -> TrustStore:
    """Read the anchors a scan trusts; do this once per scan and reuse the result.

    Args:
        ca_files: PEM/DER/PKCS#7 files of extra anchors (internal CAs); they are added to
            the other anchors, never replace them.
        use_system: Also trust the operating system's bundle (the first one found among
            OpenSSL's default and the usual Debian/RHEL/SUSE/Alpine paths).
        include_default: Trust Mozilla's roots as shipped by certifi.

    Returns:
        The trust store.

    Raises:
        ConfigError: A CA file cannot be read or holds no certificate, no system bundle
            exists when one was asked for, or no anchor at all was selected.
    """
    public: list[x509.Certificate] = []
    sources: list[str] = []
    if include_default:
        public += _read_bundle(Path(certifi.where()))
        sources.append(f"certifi {certifi.__version__} (Mozilla)")
    if use_system:
        bundles = system_bundle_paths()
        if not bundles:
            raise ConfigError("system trust store", "no CA bundle found in the usual places")
        public += _read_bundle(bundles[0])
        sources.append(f"system {bundles[0]}")
    internal: list[x509.Certificate] = []
    for ca_file in ca_files:
        internal += _read_bundle(ca_file)
        sources.append(str(ca_file))
    if not public and not internal:
        raise ConfigError("trust store", "no anchors: give --ca-file or keep the default roots")
    return TrustStore.from_certificates(internal, source=" + ".join(sources), public=public)


def _read_bundle(path: Path) -> list[x509.Certificate]:
    try:
        ders = load_certificate_file(path)
    except CertificateLoadError as exc:
        raise ConfigError(str(path), f"not a usable CA file: {exc.reason}") from exc
    # Bundles carry a few anchors with legacy encodings (negative serials); parsing
    # through the analysis cache keeps their warnings out of the way.
    return [parse_certificate(der).certificate for der in ders]


class TrustStoreCache:
    """Trust stores built once per distinct trust settings, off the event loop.

    The daemon and the exporter judge targets under several trust settings (each target
    may name its own CA files); building a store reads and parses bundles, so each is
    built once, in a thread, and kept.
    """

    def __init__(self) -> None:
        """An empty cache."""
        self._stores: dict[TrustSettings, TrustStore] = {}

    async def get(self, settings: TrustSettings) -> TrustStore:
        """The store for ``settings``, built on first use.

        Raises:
            ConfigError: A CA file named in ``settings`` cannot be read.
        """
        store = self._stores.get(settings)
        if store is None:
            store = await asyncio.to_thread(
                load_trust_store,
                ca_files=settings.ca_files,
                use_system=settings.system,
                include_default=settings.public,
            )
            self._stores[settings] = store
        return store
