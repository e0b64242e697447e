"""The demo lab: a throwaway PKI and a set of loopback TLS endpoints, one per kind of trouble.

``running_demo_lab()`` builds everything in memory and a temporary directory, starts
each server on 127.0.0.1 (port 0), and yields a ``DemoLab`` that names every endpoint,
what it stands for and what a correct scan must say about it. Leaving the context stops
the servers and deletes the directory. Nothing listens anywhere but loopback.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certvigil.analysis.codes import FindingCode
from certvigil.demo.pki import KeySpec, ThrowawayPki, self_signed_leaf
from certvigil.demo.servers import (
    HttpFileServer,
    LoopbackServer,
    ServerAddress,
    StartTlsServer,
    TlsServer,
    closed_port,
    serve_tls_handshake,
)
from certvigil.targets.target import StartTLS, Target

DEMO_DOMAIN = "demo.certvigil.test"
"""Every demo name ends in this (``.test`` is reserved by RFC 2606: it never resolves)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoEndpoint:
    """One demo endpoint and what a correct scan says about it.

    Attributes:
        label: Short name (``"expired"``).
        description: What the endpoint stands for, one phrase.
        target: Where it listens, with the SNI name its certificate is judged against.
        expect_failure: The probe must fail (nothing listens there).
        expected_codes: Finding codes a correct analysis reports for it (at least these).
    """

    label: str
    description: str
    target: Target
    expect_failure: bool = False
    expected_codes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoLab:
    """The running demo.

    Attributes:
        endpoints: The endpoints, in the order they are shown.
        ca_file: PEM file holding the demo root, to add to the trust store.
        now_utc: The reference time the certificates were issued around.
    """

    endpoints: tuple[DemoEndpoint, ...]
    ca_file: Path
    now_utc: datetime

    @property
    def targets(self) -> tuple[Target, ...]:
        """Every endpoint's target, in order."""
        return tuple(endpoint.target for endpoint in self.endpoints)


class LegacyTlsServer(LoopbackServer):
    """A TLS server for chains that OpenSSL's default security level refuses to load.

    1024-bit RSA keys and SHA-1 signatures are exactly what the demo must show, yet
    ``load_cert_chain`` rejects them at security level 2; this server drops to level 0.
    """

    def __init__(self, *, chain: Sequence[bytes], key_pem: bytes, host: str = "127.0.0.1") -> None:
        """Configure the server.

        Args:
            chain: Certificates in PEM, leaf first.
            key_pem: The leaf's private key.
            host: Loopback address to listen on.
        """
        super().__init__(host=host)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.set_ciphers("DEFAULT:@SECLEVEL=0")
        with tempfile.TemporaryDirectory(prefix="certvigil-demo-") as directory:
            chain_path = Path(directory) / "chain.pem"
            key_path = Path(directory) / "key.pem"
            chain_path.write_bytes(b"".join(chain))
            key_path.touch(mode=0o600)
            key_path.write_bytes(key_pem)
            self.context.load_cert_chain(chain_path, key_path)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Shake hands, then wait for the client to hang up."""
        await serve_tls_handshake(reader, writer, self.context)


def _name(label: str) -> str:
    return f"{label}.{DEMO_DOMAIN}"


def _target(address: ServerAddress, label: str, starttls: StartTLS | None = None) -> Target:
    return Target(host=address.host, port=address.port, sni=_name(label), starttls=starttls)


@contextmanager
def running_demo_lab(*, now_utc: datetime | None = None) -> Iterator[DemoLab]:
    """Build the demo PKI, start every demo server, and stop them all on exit.

    Args:
        now_utc: Reference time for issuing (default: the clock).

    Yields:
        The running lab.
    """
    now = now_utc or datetime.now(UTC)
    pki = ThrowawayPki.create(
        now_utc=now,
        root_name="certvigil Demo Root CA",
        intermediate_name="certvigil Demo Issuing CA",
    )
    rsa_issuer = pki.root.intermediate(
        common_name="certvigil Demo Legacy RSA CA", key=KeySpec.RSA_2048
    )
    stranger = ThrowawayPki.create(
        now_utc=now,
        root_name="Unknown Private Root CA",
        intermediate_name="Unknown Private Issuing CA",
    )
    endpoints: list[DemoEndpoint] = []
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="certvigil-demo-") as work:
        ca_file = Path(work) / "demo-root.pem"
        ca_file.write_bytes(pki.root.pem)

        def serve(chain: tuple[bytes, ...], key_pem: bytes) -> ServerAddress:
            return stack.enter_context(TlsServer(chain=chain, key_pem=key_pem))

        def add(
            label: str,
            description: str,
            address: ServerAddress,
            *,
            codes: tuple[str, ...] = (),
            failure: bool = False,
            starttls: StartTLS | None = None,
        ) -> None:
            endpoints.append(
                DemoEndpoint(
                    label=label,
                    description=description,
                    target=_target(address, label, starttls),
                    expect_failure=failure,
                    expected_codes=codes,
                )
            )

        leaf = pki.issue_leaf(dns_names=(_name("good"),), valid_days=90)
        add(
            "good",
            "valid, trusted, complete chain",
            serve(pki.served_chain_der(leaf), leaf.key_pem),
        )

        leaf = pki.issue_leaf(
            dns_names=(_name("expired"),),
            not_before_utc=now - timedelta(days=93),
            not_after_utc=now - timedelta(days=3),
        )
        add(
            "expired",
            "expired three days ago",
            serve(pki.served_chain_der(leaf), leaf.key_pem),
            codes=(FindingCode.EXPIRED,),
        )

        leaf = pki.issue_leaf(
            dns_names=(_name("expiring"),),
            not_before_utc=now - timedelta(days=85),
            not_after_utc=now + timedelta(days=5, hours=6),
        )
        add(
            "expiring",
            "expires in five days",
            serve(pki.served_chain_der(leaf), leaf.key_pem),
            codes=(FindingCode.EXPIRES_SOON,),
        )

        leaf = self_signed_leaf(dns_names=(_name("self-signed"),), now_utc=now)
        add(
            "self-signed",
            "self-signed leaf",
            serve((leaf.der,), leaf.key_pem),
            codes=(FindingCode.SELF_SIGNED,),
        )

        leaf = stranger.issue_leaf(dns_names=(_name("untrusted-root"),))
        add(
            "untrusted-root",
            "chain to a root nobody trusts",
            # The whole chain up to the unknown root, as such servers usually send it.
            serve(leaf.chain_der(stranger.intermediate, stranger.root), leaf.key_pem),
            codes=(FindingCode.UNTRUSTED_ROOT,),
        )

        leaf = pki.issue_leaf(dns_names=(_name("somewhere-else"),))
        add(
            "wrong-host",
            "certificate for another name",
            serve(pki.served_chain_der(leaf), leaf.key_pem),
            codes=(FindingCode.HOSTNAME_MISMATCH,),
        )

        aia = stack.enter_context(HttpFileServer({"/issuing-ca.der": pki.intermediate.der}))
        leaf = pki.issue_leaf(
            dns_names=(_name("missing-intermediate"),),
            ca_issuer_urls=(aia.url("/issuing-ca.der"),),
        )
        add(
            "missing-intermediate",
            "intermediate not sent (fetchable over AIA)",
            serve((leaf.der,), leaf.key_pem),
            codes=(FindingCode.INCOMPLETE_CHAIN,),
        )

        leaf = pki.issue_leaf(dns_names=(_name("weak-key"),), key=KeySpec.RSA_1024)
        address = stack.enter_context(
            LegacyTlsServer(chain=(leaf.pem, pki.intermediate.pem), key_pem=leaf.key_pem)
        )
        add("weak-key", "1024-bit RSA key", address, codes=(FindingCode.WEAK_KEY,))

        leaf = rsa_issuer.issue_leaf(dns_names=(_name("sha1"),), signature_hash="sha1")
        address = stack.enter_context(
            LegacyTlsServer(chain=(leaf.pem, rsa_issuer.pem), key_pem=leaf.key_pem)
        )
        add("sha1", "SHA-1 signature", address, codes=(FindingCode.WEAK_SIGNATURE,))

        leaf = pki.issue_leaf(dns_names=(_name("smtp"),))
        address = stack.enter_context(
            StartTlsServer(StartTLS.SMTP, chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
        )
        add("smtp", "SMTP with STARTTLS, valid", address, starttls=StartTLS.SMTP)

        address = stack.enter_context(closed_port())
        add("closed-port", "nothing listening", address, failure=True)

        yield DemoLab(endpoints=tuple(endpoints), ca_file=ca_file, now_utc=now)
