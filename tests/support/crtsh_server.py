"""A local HTTP server playing crt.sh for tests, serving crt.sh's real recorded answers.

crt.sh cannot be reached from tests, so this threaded server on 127.0.0.1 (port 0)
answers ``/?q=<query>&output=json`` with the body registered for that query (the real
answers in ``tests/data/crtsh``), ``[]`` for a query it does not know, and injected
faults on request: error statuses with ``Retry-After``, an HTML error page, a body
that never ends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.support.quiet_http import QuietHTTPServer

DATA = Path(__file__).resolve().parent.parent / "data" / "crtsh"


def recorded(name: str) -> bytes:
    """A real crt.sh answer from tests/data/crtsh."""
    return (DATA / name).read_bytes()


@dataclass
class CrtshFault:
    """Answer the next ``count`` requests with ``status`` (and this body and Retry-After)."""

    status: int
    count: int
    retry_after: str | None = None
    body: bytes = b"<html><body>502 Bad Gateway</body></html>"


class CrtshServer:
    """The server; ``answers`` maps a ``q`` value to the body served for it."""

    def __init__(self) -> None:
        self.answers: dict[str, bytes] = {}
        self.faults: list[CrtshFault] = []
        self.stream_forever = False
        self.queries: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._answer(self)

        self._http = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> CrtshServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()

    @property
    def url(self) -> str:
        """The server's base URL, ending in ``/``."""
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}/"

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        q = query.get("q", [""])[0]
        with self._lock:
            self.queries.append(q)
            fault = next((f for f in self.faults if f.count > 0), None)
            if fault is not None:
                fault.count -= 1
        if fault is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            return self._send(handler, fault.status, fault.body, headers)
        if self.stream_forever:
            return self._stream(handler)
        if query.get("output") != ["json"]:
            return self._send(handler, 200, b"<html>crt.sh</html>", {})
        self._send(handler, 200, self.answers.get(q, b"[]"), {})

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b"[" + b" " * 1023
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            while not self._stop.is_set():
                handler.wfile.write(frame)
                handler.wfile.flush()
                time.sleep(0.01)
        except OSError:
            pass
        handler.close_connection = True
