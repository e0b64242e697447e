"""The daemon records what an endpoint serving a defective certificate is judged to be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.store import open_store
from tests.daemon.helpers import expiring_leaf, write_config
from tests.support.crafted import craft


def test_duplicated_extension_is_a_finding_not_an_unreachable_endpoint(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """Three ``run --once`` cycles record the endpoint as seen, with the defect as a finding.

    A served certificate with a duplicated extension once made the analysis raise: each
    cycle recorded an internal error and the third raised a false "unreachable" alert.
    """
    leaf = expiring_leaf(pki, days_left=200)
    odd = craft("duplicate_extension", pki.intermediate)
    chain = (leaf.der, pki.intermediate.der, odd.pem)
    with TlsServer(chain=chain, key_pem=leaf.key_pem) as server:
        config = write_config(
            tmp_path, root_pem=pki.root.pem, endpoints=[("localhost", server.port, None)]
        )
        for _ in range(3):
            result = subprocess.run(
                [sys.executable, "-m", "certvigil", "run", "--config", str(config), "--once"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "Traceback" not in result.stderr
    store = open_store(f"sqlite:///{tmp_path / 'inventory.db'}")
    try:
        (endpoint,) = store.list_endpoints()
        history = store.endpoint_history(endpoint.id)
        assert [h.status.value for h in history] == ["ok", "ok", "ok"]
        problems = [f for f in history[0].findings if f.code == "certificate_parse_problem"]
        assert [f.cert_index for f in problems] == [2]
        assert "appears more than once" in problems[0].message
        assert not [a for a in store.list_alerts() if a.kind == "unreachable"]
    finally:
        store.close()
