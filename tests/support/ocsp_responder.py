"""A real OCSP responder and CRL publisher on loopback, for tests, the demo and benchmarks.

:class:`OcspResponder` answers RFC 6960 requests from a table of serial numbers (good,
revoked with time and reason, anything else unknown), signed by the issuer or by a
delegated responder certificate, and can misbehave on purpose: expired answers, answers
from the future, broken signatures. :func:`build_crl` makes CRLs with
``CertificateRevocationListBuilder``. :class:`RevocationServer` serves both over HTTP
on 127.0.0.1: OCSP by GET (``/ocsp/<base64>``) and POST (``/ocsp``), CRLs by path::

    responder = OcspResponder(issuer=pki.intermediate.issued, clock=clock)
    server = RevocationServer(responder=responder, files={"/int.crl": crl_der})
    with server as address:
        leaf = pki.issue_leaf(ocsp_urls=[server.url("/ocsp")], crl_urls=[server.url("/int.crl")])
"""

from __future__ import annotations

import base64
import binascii
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certvigil.demo.pki import IssuedCert
from tests.support.quiet_http import QuietHTTPServer


class ResponseMode(StrEnum):
    """How the responder misbehaves, if at all."""

    NORMAL = "normal"
    """Fresh: thisUpdate an hour ago, nextUpdate ``validity`` later."""
    EXPIRED = "expired"
    """nextUpdate a day in the past."""
    FUTURE = "future"
    """thisUpdate a day in the future."""
    BAD_SIGNATURE = "bad_signature"
    """A normal answer whose signature has one bit flipped."""
    NO_NEXT_UPDATE = "no_next_update"
    """thisUpdate ``age`` ago and no nextUpdate at all."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoked:
    """A revoked serial.

    Attributes:
        revoked_at_utc: When it was revoked (aware UTC).
        reason: The CRLReason, ``None`` to give none.
    """

    revoked_at_utc: datetime
    reason: x509.ReasonFlags | None = None


GOOD = "good"
"""Table value for a serial that is not revoked."""


class OcspResponder:
    """Builds signed OCSP answers from a table of serials.

    Attributes:
        issuer: The CA whose certificates this responder answers for.
        signer: Who signs: the issuer itself, or a delegated responder certificate
            (which is then included in each answer).
        statuses: Serial number to ``GOOD`` or :class:`Revoked`; others are unknown.
        mode: The misbehaviour to show.
        validity: nextUpdate - thisUpdate for normal answers.
        age: How long ago thisUpdate was for ``NO_NEXT_UPDATE`` answers.
        responder_id_by_name: Identify the signer by name rather than key hash.
        requests_answered: Number of answers built so far.
    """

    def __init__(
        self,
        *,
        issuer: IssuedCert,
        clock: Callable[[], datetime],
        signer: IssuedCert | None = None,
        statuses: Mapping[int, str | Revoked] | None = None,
        mode: ResponseMode = ResponseMode.NORMAL,
        validity: timedelta = timedelta(days=4),
        age: timedelta = timedelta(hours=1),
        responder_id_by_name: bool = False,
    ) -> None:
        """Configure; the answers are built per request."""
        self.issuer = issuer
        self.signer = signer or issuer
        self.statuses: dict[int, str | Revoked] = dict(statuses or {})
        self.mode = mode
        self.validity = validity
        self.age = age
        self.responder_id_by_name = responder_id_by_name
        self.requests_answered = 0
        self._clock = clock

    def respond(self, request_der: bytes) -> bytes:
        """The DER OCSPResponse to one DER OCSPRequest (``malformedRequest`` if it is bad)."""
        try:
            request = ocsp.load_der_ocsp_request(request_der)
        except ValueError:
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        self.requests_answered += 1
        now = self._clock()
        this_update, next_update = self._times(now)
        entry = self.statuses.get(request.serial_number)
        revocation_time: datetime | None = None
        reason: x509.ReasonFlags | None = None
        if isinstance(entry, Revoked):
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time, reason = entry.revoked_at_utc, entry.reason
        elif entry == GOOD:
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.UNKNOWN
        builder = ocsp.OCSPResponseBuilder().add_response_by_hash(
            issuer_name_hash=request.issuer_name_hash,
            issuer_key_hash=request.issuer_key_hash,
            serial_number=request.serial_number,
            algorithm=request.hash_algorithm,
            cert_status=status,
            this_update=this_update,
            next_update=next_update,
            revocation_time=revocation_time,
            revocation_reason=reason,
        )
        encoding = (
            ocsp.OCSPResponderEncoding.NAME
            if self.responder_id_by_name
            else ocsp.OCSPResponderEncoding.HASH
        )
        builder = builder.responder_id(encoding, self.signer.certificate)
        if self.signer is not self.issuer:
            builder = builder.certificates([self.signer.certificate])
        response = builder.sign(self.signer.private_key, _hash_for(self.signer))
        der = response.public_bytes(Encoding.DER)
        if self.mode is ResponseMode.BAD_SIGNATURE:
            der = corrupt_signature(der, response.signature)
        return der

    def _times(self, now: datetime) -> tuple[datetime, datetime | None]:
        if self.mode is ResponseMode.EXPIRED:
            return now - timedelta(days=2), now - timedelta(days=1)
        if self.mode is ResponseMode.FUTURE:
            return now + timedelta(days=1), now + timedelta(days=1) + self.validity
        if self.mode is ResponseMode.NO_NEXT_UPDATE:
            return now - self.age, None
        start = now - timedelta(hours=1)
        return start, start + self.validity


def _hash_for(signer: IssuedCert) -> hashes.SHA256 | None:
    return None if isinstance(signer.private_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)


def corrupt_signature(der: bytes, signature: bytes) -> bytes:
    """``der`` with one bit of its ``signature`` flipped: well-formed, but no longer valid.

    Args:
        der: A signed DER structure (certificate, CRL, OCSP response).
        signature: Its signature bytes, which must occur exactly once in ``der``.

    Returns:
        The altered DER.
    """
    if der.count(signature) != 1:
        raise ValueError("the signature must occur exactly once in the DER")
    at = der.index(signature) + len(signature) // 2
    return der[:at] + bytes([der[at] ^ 0x01]) + der[at + 1 :]


def build_crl(
    *,
    issuer: IssuedCert,
    this_update_utc: datetime,
    next_update_utc: datetime | None,
    revoked: Iterable[tuple[int, Revoked]] = (),
    signing_key: IssuedCert | None = None,
    extensions: Iterable[x509.ExtensionType] = (),
) -> bytes:
    """A DER CRL from ``issuer`` listing ``revoked``.

    Args:
        issuer: The CA named as the CRL issuer (and signer unless ``signing_key``).
        this_update_utc: thisUpdate.
        next_update_utc: nextUpdate; ``None`` is refused by cryptography, so pass a time.
        revoked: ``(serial, Revoked)`` pairs.
        signing_key: Sign with this key instead (a forged CRL: the signature will not
            verify with the issuer's key).
        extensions: Extra CRL extensions (a ``DeltaCRLIndicator``, an
            ``IssuingDistributionPoint``), added non-critical.

    Returns:
        The CRL in DER.
    """
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.certificate.subject)
        .last_update(this_update_utc)
        .next_update(next_update_utc or this_update_utc + timedelta(days=7))
        .add_extension(x509.CRLNumber(int(time.time())), critical=False)
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    for serial, entry in revoked:
        revoked_builder = (
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(entry.revoked_at_utc)
        )
        if entry.reason is not None:
            revoked_builder = revoked_builder.add_extension(
                x509.CRLReason(entry.reason), critical=False
            )
        builder = builder.add_revoked_certificate(revoked_builder.build())
    signer = signing_key or issuer
    crl = builder.sign(signer.private_key, _hash_for(signer))
    return crl.public_bytes(Encoding.DER)


class RevocationServer:
    """An HTTP/1.1 server on loopback: an OCSP responder at ``/ocsp`` and CRL files by path.

    Attributes:
        responder: Answers OCSP requests; ``None`` answers 404 at ``/ocsp``.
        files: Path to body (CRLs, or anything else), served with status 200.
        statuses: Path to an HTTP status to answer instead (``{"/ocsp": 503}``).
        delay_s: Seconds to wait before each answer (to overlap concurrent clients).
        redirects: Path prefix to a base URL: a request under the prefix is answered
            ``302`` to the base URL followed by the rest of its path.
        requests_seen: ``(method, path)`` of every request, in arrival order.
    """

    def __init__(
        self,
        *,
        responder: OcspResponder | None = None,
        files: Mapping[str, bytes] | None = None,
        host: str = "127.0.0.1",
        delay_s: float = 0.0,
    ) -> None:
        """Configure; nothing listens until the server is entered."""
        self.responder = responder
        self.files: dict[str, bytes] = dict(files or {})
        self.statuses: dict[str, int] = {}
        self.redirects: dict[str, str] = {}
        self.delay_s = delay_s
        self.requests_seen: list[tuple[str, str]] = []
        self._host = host
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The listening port (only while the server runs)."""
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return int(self._httpd.server_address[1])

    def url(self, path: str) -> str:
        """An ``http://`` URL for ``path`` on this server."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/{path.lstrip('/')}"

    def __enter__(self) -> RevocationServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server._answer(self, "GET", None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                server._answer(self, "POST", self.rfile.read(length))

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        family_server = _server_class(self._host)
        self._httpd = family_server((self._host, 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self._httpd = None

    def _answer(self, handler: BaseHTTPRequestHandler, method: str, body: bytes | None) -> None:
        path = urllib.parse.urlsplit(handler.path).path
        with self._lock:
            self.requests_seen.append((method, path))
        if self.delay_s:
            time.sleep(self.delay_s)
        status, payload, content_type = self._route(method, path, body)
        location = next(
            (
                base + path[len(prefix) :]
                for prefix, base in self.redirects.items()
                if path.startswith(prefix)
            ),
            None,
        )
        if location is not None:
            status, payload, content_type = 302, b"moved\n", "text/plain"
        handler.close_connection = True
        try:
            handler.send_response(status)
            if location is not None:
                handler.send_header("Location", location)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.send_header("Connection", "close")
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (the time-out tests make it do so)

    def _route(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, str]:
        forced = self.statuses.get(path) or (
            self.statuses.get("/ocsp") if path.startswith("/ocsp/") else None
        )
        if forced is not None:
            return forced, b"refused\n", "text/plain"
        if path == "/ocsp" or path.startswith("/ocsp/"):
            if self.responder is None:
                return 404, b"no responder\n", "text/plain"
            if method == "POST" and body is not None:
                request_der = body
            else:
                encoded = urllib.parse.unquote(path[len("/ocsp/") :])
                try:
                    request_der = base64.b64decode(encoded, validate=True)
                except binascii.Error:
                    return 400, b"bad base64\n", "text/plain"
            return 200, self.responder.respond(request_der), "application/ocsp-response"
        found = self.files.get(path)
        if found is None:
            return 404, b"not found\n", "text/plain"
        return 200, found, "application/pkix-crl"


def _server_class(host: str) -> type[ThreadingHTTPServer]:
    if ":" not in host:
        return QuietHTTPServer

    class V6Server(QuietHTTPServer):
        address_family = socket.AF_INET6

    return V6Server
