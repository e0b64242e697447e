"""Benchmark: ``certvigil scan --deep`` of 24 loopback HTTPS endpoints of the usual kinds.

Starts a throwaway PKI, a loopback OCSP responder and CRL server (``tests/support``) and
24 endpoints on 127.0.0.1: good ones, expired, not yet valid, expiring, self-signed,
untrusted root, wrong host, missing intermediate (fetchable over AIA), weak key, SHA-1,
revoked over OCSP, revoked over CRL, OCSP "unknown", an unreachable OCSP responder,
must-staple without a staple, TLS 1.0 only (when the local OpenSSL can serve it), weak
CBC/3DES suites, TLS 1.3 only, plain HTTP, a closed port, a blackhole (accepts TCP and
never answers), a reset and a malformed certificate. Then runs the real command line
once, in a subprocess, with default options::

    certvigil scan --deep --json --ca-file ROOT localhost:PORT ... (24 targets)

and prints the wall time and each endpoint's verdict. Extra arguments after ``--`` are
passed to ``certvigil scan`` (``-- --handshake-timeout 3``). Not a test: it prints figures.

    .venv/bin/python bench/deep_zoo.py [-- EXTRA SCAN OPTIONS]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
import warnings
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certvigil.demo.endpoints import LegacyTlsServer
from certvigil.demo.pki import KeySpec, ThrowawayPki, self_signed_leaf
from certvigil.demo.servers import HttpFileServer, ServerAddress, TlsServer, closed_port

# The test-only servers live in tests/support/, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.fault_servers import (
    MalformedCertificateServer,
    PlainHttpServer,
    ResetServer,
    SilentServer,
)
from tests.support.ocsp_responder import (
    GOOD,
    OcspResponder,
    RevocationServer,
    Revoked,
    build_crl,
)

_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\nok\n"
)


async def serve_https(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
) -> None:
    """Shake hands as the server, then answer one HTTP request as a web server does."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_side=True)
    request = b""
    try:
        while True:
            try:
                tls.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            writer.write(outgoing.read())
            await writer.drain()
            if done:
                break
            data = await reader.read(65536)
            if not data:
                return
            incoming.write(data)
        while b"\r\n\r\n" not in request:
            try:
                request += tls.read(65536)
            except ssl.SSLWantReadError:
                data = await reader.read(65536)
                if not data:
                    return
                incoming.write(data)
        tls.write(_RESPONSE)
        writer.write(outgoing.read())
        await writer.drain()
    except (ssl.SSLError, OSError):
        return


class WebServer(TlsServer):
    """A TLS server that answers HTTP requests after the handshake, as HTTPS servers do."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Shake hands and answer the request."""
        await serve_https(reader, writer, self.context)


class LegacyWebServer(LegacyTlsServer):
    """``LegacyTlsServer`` (1024-bit keys, SHA-1) answering HTTP requests."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Shake hands and answer the request."""
        await serve_https(reader, writer, self.context)


def _can_serve_tls10() -> bool:
    """Whether this Python's OpenSSL lets a server speak TLS 1.0 at security level 0."""
    try:
        warnings.simplefilter("ignore", DeprecationWarning)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1
        context.maximum_version = ssl.TLSVersion.TLSv1
    except (ValueError, ssl.SSLError):
        return False
    return True


def start_zoo(stack: ExitStack, work: Path) -> tuple[list[tuple[str, ServerAddress]], Path]:
    """Start the 24 endpoints; return ``(label, address)`` pairs and the root's PEM file."""
    now = datetime.now(UTC)
    pki = ThrowawayPki.create(now_utc=now)
    rsa_issuer = pki.root.intermediate(common_name="Zoo Legacy RSA CA", key=KeySpec.RSA_2048)
    stranger = ThrowawayPki.create(now_utc=now, root_name="Stranger Root CA")
    ca_file = work / "zoo-root.pem"
    ca_file.write_bytes(pki.root.pem)
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=lambda: datetime.now(UTC))
    revocation = RevocationServer(responder=responder)
    stack.enter_context(revocation)
    ocsp, crl = [revocation.url("/ocsp")], [revocation.url("/int.crl")]
    with closed_port() as dead:
        dead_ocsp = [f"http://{dead.host}:{dead.port}/ocsp"]
    zoo: list[tuple[str, ServerAddress]] = []

    def tls(label: str, leaf_options: dict[str, object], **server: object) -> WebServer:
        leaf = pki.issue_leaf(**leaf_options)  # type: ignore[arg-type]
        chain = pki.served_chain_der(leaf)
        if label == "missing-intermediate":
            chain = (leaf.der,)
        if leaf_options.get("ocsp_urls") == ocsp:
            responder.statuses[leaf.certificate.serial_number] = GOOD
        created = WebServer(chain=chain, key_pem=leaf.key_pem, **server)  # type: ignore[arg-type]
        zoo.append((label, stack.enter_context(created)))
        created.leaf_serial = leaf.certificate.serial_number  # type: ignore[attr-defined]
        return created

    tls("good", {})
    tls("good-revocation", {"ocsp_urls": ocsp, "crl_urls": crl})
    tls(
        "expired",
        {"not_before_utc": now - timedelta(days=93), "not_after_utc": now - timedelta(days=3)},
    )
    tls("not-yet-valid", {"not_before_utc": now + timedelta(days=2), "valid_days": 90})
    tls(
        "expiring",
        {"not_before_utc": now - timedelta(days=85), "not_after_utc": now + timedelta(days=5)},
    )
    tls("wrong-host", {"dns_names": ("somewhere-else.example",)})
    aia = stack.enter_context(HttpFileServer({"/issuing-ca.der": pki.intermediate.der}))
    tls("missing-intermediate", {"ca_issuer_urls": (aia.url("/issuing-ca.der"),)})
    revoked_ocsp = tls("revoked-ocsp", {"ocsp_urls": ocsp})
    responder.statuses[revoked_ocsp.leaf_serial] = Revoked(  # type: ignore[attr-defined]
        revoked_at_utc=now - timedelta(days=1)
    )
    revoked_crl = tls("revoked-crl", {"crl_urls": crl})
    revocation.files["/int.crl"] = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=7),
        revoked=[(revoked_crl.leaf_serial, Revoked(revoked_at_utc=now - timedelta(days=1)))],  # type: ignore[attr-defined]
    )
    unknown = tls("ocsp-unknown", {"ocsp_urls": ocsp})
    del responder.statuses[unknown.leaf_serial]  # type: ignore[attr-defined]
    tls("ocsp-unreachable", {"ocsp_urls": dead_ocsp})
    tls("must-staple", {"must_staple": True, "ocsp_urls": ocsp})
    tls("tls13-only", {}, minimum_version=ssl.TLSVersion.TLSv1_3)
    weak = tls("weak-ciphers", {"key": KeySpec.RSA_2048}, maximum_version=ssl.TLSVersion.TLSv1_2)
    weak.context.set_ciphers("AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0")
    if _can_serve_tls10():
        old = tls(
            "tls10-only",
            {"key": KeySpec.RSA_2048},
            minimum_version=ssl.TLSVersion.TLSv1,
            maximum_version=ssl.TLSVersion.TLSv1,
        )
        old.context.set_ciphers("DEFAULT:@SECLEVEL=0")
    else:
        print("note: the local OpenSSL cannot serve TLS 1.0; a TLS 1.2 endpoint stands in")
        tls("tls12-only", {}, maximum_version=ssl.TLSVersion.TLSv1_2)
    leaf = self_signed_leaf(now_utc=now)
    zoo.append(
        ("self-signed", stack.enter_context(WebServer(chain=(leaf.der,), key_pem=leaf.key_pem)))
    )
    leaf = stranger.issue_leaf()
    chain = leaf.chain_der(stranger.intermediate, stranger.root)
    zoo.append(
        ("untrusted-root", stack.enter_context(WebServer(chain=chain, key_pem=leaf.key_pem)))
    )
    leaf = pki.issue_leaf(key=KeySpec.RSA_1024)
    legacy = LegacyWebServer(chain=(leaf.pem, pki.intermediate.pem), key_pem=leaf.key_pem)
    zoo.append(("weak-key", stack.enter_context(legacy)))
    leaf = rsa_issuer.issue_leaf(signature_hash="sha1")
    zoo.append(
        (
            "sha1",
            stack.enter_context(
                LegacyWebServer(chain=(leaf.pem, rsa_issuer.pem), key_pem=leaf.key_pem)
            ),
        )
    )
    zoo.append(("plain-http", stack.enter_context(PlainHttpServer())))
    zoo.append(("closed-port", stack.enter_context(closed_port())))
    zoo.append(("blackhole", stack.enter_context(SilentServer())))
    zoo.append(("reset", stack.enter_context(ResetServer())))
    zoo.append(("malformed-cert", stack.enter_context(MalformedCertificateServer())))
    return zoo, ca_file


def main() -> None:
    """Start the zoo, scan it once with the command line and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extra", nargs="*", help="extra options for certvigil scan (after --)")
    args = parser.parse_args()
    with ExitStack() as stack, tempfile.TemporaryDirectory() as directory:
        zoo, ca_file = start_zoo(stack, Path(directory))
        by_endpoint = {f"localhost:{address.port}": label for label, address in zoo}
        command = [
            sys.executable, "-m", "certvigil", "scan", "--deep", "--json", "--no-progress",
            "--ca-file", str(ca_file), *args.extra, *by_endpoint,
        ]  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        servers_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, env={**os.environ}
        )
        wall_s = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        servers_after = resource.getrusage(resource.RUSAGE_SELF)
        servers_cpu_s = (servers_after.ru_utime + servers_after.ru_stime) - (
            servers_before.ru_utime + servers_before.ru_stime
        )
        cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        try:
            document = json.loads(done.stdout)
        except json.JSONDecodeError:
            print(done.stderr)
            raise
        rows = []
        for endpoint in document["endpoints"]:
            label = by_endpoint.get(endpoint["endpoint"], endpoint["endpoint"])
            failure = endpoint["failure"]
            grade = (endpoint.get("deep") or {}).get("grade", {}).get("grade", "-")
            what = (
                f"{failure['kind']} ({failure['detail']})"
                if failure
                else ", ".join(f["code"] for f in endpoint["findings"] if f["severity"] != "ok")
            )
            rows.append((label, endpoint["verdict"], grade, what))
        for label, verdict, grade, what in sorted(rows):
            print(f"{label:22} {verdict:9} {grade:3} {what[:110]}")
        print(f"{len(zoo)} endpoints, exit {done.returncode}: {done.stderr.strip()[-200:]}")
        print(
            f"wall time: {wall_s:.2f} s, scan CPU {cpu_s:.2f} s, servers' CPU "
            f"{servers_cpu_s:.2f} s, load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
            f"({' '.join(args.extra) or 'default options'})"
        )


if __name__ == "__main__":
    main()
