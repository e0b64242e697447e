"""Real observation documents: loopback TLS servers scanned with the scanner."""

from __future__ import annotations

import contextlib
from typing import Any

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.server.wire import item_from_report
from certvigil.targets.target import Target

FAST = ScanOptions(
    connect_timeout_s=2, handshake_timeout_s=2, retries=0, deadline_s=10, concurrency=8
)


def scanned_items(
    pki: ThrowawayPki, leaves: list[IssuedCert], *, tags: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """One item per leaf, each served by its own loopback TLS server, in order."""
    trust = TrustStore.from_certificates([pki.root.certificate], source="test root")
    with contextlib.ExitStack() as stack:
        addresses = [
            stack.enter_context(TlsServer(chain=pki.served_chain_der(c), key_pem=c.key_pem))
            for c in leaves
        ]
        targets = [Target(host="127.0.0.1", port=a.port) for a in addresses]
        reports = {r.target: r for r in scan(targets, options=FAST, trust=trust)}
    return [item_from_report(reports[t], tags=tags) for t in targets]
