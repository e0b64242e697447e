"""Scans on request assess revocation and issuers, fetching only inside the allow-list.

Real parts on loopback: TLS servers with throwaway-PKI leaves, an OCSP responder and CRL
publisher on 127.0.0.1 (inside ``serve.scan_allow``) and another on 127.0.0.2 (outside
it), the server on uvicorn. 127.0.0.2 is loopback too, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from certvigil.config.loading import load_config
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.errors import UsageError
from certvigil.probe.fenced_http import FetchNotAllowed, fenced_client
from certvigil.server.allowlist import AllowList
from certvigil.server.app import create_app
from certvigil.server.keys import Scope
from certvigil.store import open_store
from tests.server.conftest import make_key, root_pem_file, write_server_config
from tests.support.live_app import serve_app
from tests.support.ocsp_responder import GOOD, OcspResponder, RevocationServer, Revoked, build_crl


def _now() -> datetime:
    return datetime.now(UTC)


def _responder(pki: ThrowawayPki, host: str) -> RevocationServer:
    return RevocationServer(
        responder=OcspResponder(issuer=pki.intermediate.issued, clock=_now), host=host
    )


@pytest.fixture
def inside(pki: ThrowawayPki) -> Iterator[RevocationServer]:
    """OCSP and CRLs on 127.0.0.1, inside the allow-list; serves a current, empty CRL."""
    with _responder(pki, "127.0.0.1") as server:
        server.files["/int.crl"] = build_crl(
            issuer=pki.intermediate.issued,
            this_update_utc=_now() - timedelta(hours=1),
            next_update_utc=_now() + timedelta(days=7),
        )
        yield server


@pytest.fixture
def outside(pki: ThrowawayPki) -> Iterator[RevocationServer]:
    """The same on 127.0.0.2, outside the allow-list: it must never be asked anything."""
    with _responder(pki, "127.0.0.2") as server:
        server.files["/int.der"] = pki.intermediate.issued.der
        yield server


@pytest.fixture
def api(tmp_path: Path, pki: ThrowawayPki) -> Iterator[tuple[str, dict[str, str]]]:
    """A server allowing 127.0.0.1/32, trusting the test root, revocation on, no deep probes."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    open_store(url).close()
    config = write_server_config(
        tmp_path,
        url,
        scan_allow=("127.0.0.1/32",),
        trust={"public": False, "ca_files": [str(root_pem_file(pki, tmp_path))]},
        checks={"protocols": False, "grade": False},
    )
    loaded = load_config(config)
    store = open_store(loaded.database_url)
    try:
        headers = {"X-API-Key": make_key(store, "k-admin", Scope.ADMIN)}
        with serve_app(create_app(loaded, store, poll_s=0.05)) as base:
            yield base, headers
    finally:
        store.close()


def _leaf(pki: ThrowawayPki, server: RevocationServer, **urls: Any) -> IssuedCert:
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",), **urls)
    assert server.responder is not None
    server.responder.statuses[leaf.certificate.serial_number] = GOOD
    return leaf


def _scan(
    api: tuple[str, dict[str, str]], chain: tuple[bytes, ...], leaf: IssuedCert
) -> dict[str, Any]:
    base, headers = api
    with TlsServer(chain=chain, key_pem=leaf.key_pem) as address:
        answer = httpx.post(
            f"{base}/api/v1/scans",
            json={"targets": [{"host": "127.0.0.1", "port": address.port}]},
            headers=headers,
            timeout=60,
        )
    assert answer.status_code == 200, answer.text
    (item,) = answer.json()["items"]
    assert item["status"] == "ok", item
    return dict(item)


def _codes(item: dict[str, Any]) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in item["findings"]}


def test_a_revoked_leaf_is_found_through_the_responder_inside(
    api: tuple[str, dict[str, str]], pki: ThrowawayPki, inside: RevocationServer
) -> None:
    """The scan asks the OCSP responder inside the list and reports the revocation."""
    leaf = _leaf(pki, inside, ocsp_urls=[inside.url("/ocsp")])
    assert inside.responder is not None
    inside.responder.statuses[leaf.certificate.serial_number] = Revoked(
        revoked_at_utc=(_now() - timedelta(days=1)).replace(microsecond=0),
        reason=x509.ReasonFlags.key_compromise,
    )

    item = _scan(api, pki.served_chain_der(leaf), leaf)

    assert _codes(item).get("revoked") == "critical"
    assert item["verdict"] == "critical"
    assert item["not_checked"] == []
    assert any(path.startswith("/ocsp") for _, path in inside.requests_seen)


def test_a_redirect_outside_is_refused_and_reported_while_the_crl_decides(
    api: tuple[str, dict[str, str]],
    pki: ThrowawayPki,
    inside: RevocationServer,
    outside: RevocationServer,
) -> None:
    """OCSP redirected to 127.0.0.2 is not followed: "not checked", and the CRL says good."""
    inside.redirects["/away"] = outside.url("/ocsp")
    leaf = _leaf(pki, inside, ocsp_urls=[inside.url("/away")], crl_urls=[inside.url("/int.crl")])

    item = _scan(api, pki.served_chain_der(leaf), leaf)

    assert outside.requests_seen == []
    (said,) = item["not_checked"]
    assert f"not checked: {outside.url('/ocsp')}" in said
    assert "outside the allow-list" in said
    # The CRL inside established "good", so the refused OCSP fetch is information.
    assert _codes(item)["fetch_not_allowed"] == "info", item["findings"]
    assert ("GET", "/int.crl") in inside.requests_seen


def test_a_refused_fetch_alone_is_a_warning_never_a_pass(
    api: tuple[str, dict[str, str]],
    pki: ThrowawayPki,
    inside: RevocationServer,
    outside: RevocationServer,
) -> None:
    """With only a responder outside the list, the leaf's revocation is an open warning."""
    leaf = _leaf(pki, inside, ocsp_urls=[outside.url("/ocsp")])

    item = _scan(api, pki.served_chain_der(leaf), leaf)

    assert outside.requests_seen == []
    assert _codes(item)["fetch_not_allowed"] == "warning"
    assert item["verdict"] == "warning"


def test_a_missing_issuer_is_fetched_inside_and_refused_outside(
    api: tuple[str, dict[str, str]],
    pki: ThrowawayPki,
    inside: RevocationServer,
    outside: RevocationServer,
) -> None:
    """An AIA URL inside completes the chain; one outside is "not checked" and not asked."""
    inside.files["/int.der"] = pki.intermediate.issued.der
    completed = _leaf(pki, inside, ca_issuer_urls=[inside.url("/int.der")])
    item = _scan(api, (completed.der,), completed)
    assert ("GET", "/int.der") in inside.requests_seen
    assert "untrusted" not in _codes(item)
    assert item["not_checked"] == []

    refused = _leaf(pki, inside, ca_issuer_urls=[outside.url("/int.der")])
    item = _scan(api, (refused.der,), refused)
    assert outside.requests_seen == []
    assert any(
        f"AIA issuer not checked: {outside.url('/int.der')} outside the allow-list" in said
        for said in item["not_checked"]
    ), item["not_checked"]


def test_a_name_resolving_outside_the_blocks_is_refused(
    api: tuple[str, dict[str, str]], pki: ThrowawayPki, tmp_path: Path
) -> None:
    """localhost (127.0.0.1) passes the pattern but not the 127.0.0.2/32 block: 403."""
    config = write_server_config(
        tmp_path, f"sqlite:///{tmp_path / 'server.db'}", scan_allow=("127.0.0.2/32", "localhost")
    )
    loaded = load_config(config)
    store = open_store(loaded.database_url)
    try:
        headers = {"X-API-Key": make_key(store, "k-admin2", Scope.ADMIN)}
        with serve_app(create_app(loaded, store, poll_s=0.05)) as base:
            answer = httpx.post(
                f"{base}/api/v1/scans",
                json={"targets": [{"host": "localhost", "port": 443}]},
                headers=headers,
            )
    finally:
        store.close()
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "not_allowed"
    assert "localhost resolves to 127.0.0.1" in error["message"]


def _fetch(allow: AllowList, url: str) -> httpx.Response | FetchNotAllowed:
    async def run() -> httpx.Response | FetchNotAllowed:
        async with fenced_client(allow, timeout_s=5) as client:
            try:
                return await client.get(url)
            except FetchNotAllowed as exc:
                return exc

    return asyncio.run(run())


def test_the_fence_checks_the_addresses_a_name_resolves_to(inside: RevocationServer) -> None:
    """By default a name is kept only for addresses inside a block; "trust" takes DNS."""
    url = f"http://localhost:{inside.port}/int.crl"

    refused = _fetch(AllowList.parse(["127.0.0.2/32", "localhost"]), url)
    assert isinstance(refused, FetchNotAllowed)
    assert str(refused) == (
        f"not checked: {url} outside the allow-list (localhost resolves to 127.0.0.1)"
    )
    assert inside.requests_seen == []

    checked = _fetch(AllowList.parse(["127.0.0.1/32", "localhost"]), url)
    trusted = _fetch(AllowList.parse(["localhost"], dns="trust"), url)
    assert isinstance(checked, httpx.Response) and checked.status_code == 200
    assert isinstance(trusted, httpx.Response) and trusted.status_code == 200
    assert inside.requests_seen == [("GET", "/int.crl"), ("GET", "/int.crl")]

    unmatched = _fetch(AllowList.parse(["127.0.0.0/8", "*.lab.example"]), url)
    assert isinstance(unmatched, FetchNotAllowed)


def test_name_patterns_without_blocks_need_dns_trust() -> None:
    """A list of patterns alone could pass nothing under "check": refused at start-up."""
    with pytest.raises(UsageError, match="scan_allow_dns: trust"):
        AllowList.parse(["*.lab.example"])
    with pytest.raises(UsageError, match="check or trust"):
        AllowList.parse(["10.0.0.0/8"], dns="maybe")
    assert AllowList.parse(["*.lab.example"], dns="trust").trusts_dns


def test_redirects_inside_are_followed_and_each_hop_is_checked(
    inside: RevocationServer, outside: RevocationServer
) -> None:
    """A hop to 127.0.0.1 is followed; the second hop of a chain, to 127.0.0.2, is not."""
    allow = AllowList.parse(["127.0.0.1/32"])
    inside.redirects["/hop"] = inside.url("/int.crl")
    followed = _fetch(allow, inside.url("/hop"))
    assert isinstance(followed, httpx.Response) and followed.status_code == 200

    inside.redirects["/twice"] = inside.url("/away")
    inside.redirects["/away"] = outside.url("/int.der")
    refused = _fetch(allow, inside.url("/twice"))
    assert isinstance(refused, FetchNotAllowed)
    assert refused.url == outside.url("/int.der")
    assert outside.requests_seen == []
    assert [path for _, path in inside.requests_seen] == ["/hop", "/int.crl", "/twice", "/away"]
