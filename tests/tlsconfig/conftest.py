"""Real TLS servers on 127.0.0.1 for the protocol and cipher tests: ``openssl s_server``
processes with chosen protocols, suites and options, and a Python HTTPS server."""

from __future__ import annotations

import datetime as dt
import http.server
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.quiet_http import QuietHTTPServer


@dataclass(frozen=True)
class CertFiles:
    """A self-signed localhost certificate and its key, as PEM files."""

    cert: Path
    key: Path


@pytest.fixture(scope="session")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> CertFiles:
    """An RSA-2048 self-signed certificate for localhost, written for s_server."""
    directory = tmp_path_factory.mktemp("tlsconfig-certs")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = CertFiles(cert=directory / "cert.pem", key=directory / "key.pem")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


@pytest.fixture(scope="session")
def dh1024_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1024-bit DH parameters (the RFC 5114 group), for a weak-DHE server."""
    path = tmp_path_factory.mktemp("tlsconfig-dh") / "dh1024.pem"
    subprocess.run(
        ["openssl", "genpkey", "-genparam", "-algorithm", "DH",
         "-pkeyopt", "group:dh_1024_160", "-out", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


StartServer = Callable[..., int]


@pytest.fixture
def s_server(cert_files: CertFiles) -> Iterator[StartServer]:
    """Start ``openssl s_server`` on 127.0.0.1 with extra arguments; returns its port.

    With ``www=False`` the server does not speak HTTP: it echoes lines reversed.
    """
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    processes: list[subprocess.Popen[str]] = []

    def start(*args: str, www: bool = True) -> int:
        process = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", str(cert_files.cert),
             "-key", str(cert_files.key), *(["-www"] if www else ["-rev"]), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        processes.append(process)
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ACCEPT"):
                # Keep draining what s_server prints per connection, or the pipe fills.
                threading.Thread(target=process.stdout.read, daemon=True).start()
                return int(line.strip().rsplit(":", 1)[1])
        raise RuntimeError(f"s_server {' '.join(args)} did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


class _HstsHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200 and an HSTS header."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


class _TlsHttpServer(QuietHTTPServer):
    """An HTTPS server that handshakes in the handler thread, errors kept quiet."""

    context: ssl.SSLContext

    def finish_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        try:
            with self.context.wrap_socket(request, server_side=True) as tls:
                self.RequestHandlerClass(tls, client_address, self)  # type: ignore[arg-type]
        except (OSError, ssl.SSLError):
            pass  # the probes drop most connections mid-handshake on purpose


@pytest.fixture
def hsts_server(cert_files: CertFiles) -> Iterator[int]:
    """A Python HTTPS server (TLS 1.2+, AEAD suites) that sends HSTS; returns its port."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_files.cert, cert_files.key)
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    server = _TlsHttpServer(("127.0.0.1", 0), _HstsHandler)
    server.context = context
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)
