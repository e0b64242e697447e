"""Real receivers on loopback for alert deliveries: an HTTP endpoint and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.quiet_http import QuietHTTPServer


@dataclass
class HttpRequest:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """A webhook receiver answering with scripted status codes (then 200)."""

    port: int = 0
    statuses: list[int] = field(default_factory=list)
    requests: list[HttpRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, scheme: str, path: str = "/hook") -> str:
        """``scheme://127.0.0.1:port/path``."""
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def accepted(self) -> list[HttpRequest]:
        """Requests answered 2xx."""
        with self.lock:
            return [r for r in self.requests if r.headers.get("x-answered") == "200"]


@contextmanager
def http_receiver(statuses: list[int] | None = None) -> Iterator[HttpReceiver]:
    """Run an HTTP receiver in a thread on 127.0.0.1; it answers ``statuses`` in turn, then 200."""
    receiver = HttpReceiver(statuses=list(statuses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            with receiver.lock:
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                headers = {k.lower(): v for k, v in self.headers.items()}
                headers["x-answered"] = str(status)
                receiver.requests.append(HttpRequest(path=self.path, headers=headers, body=body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Mail:
    """One e-mail the SMTP server received."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class _MailHandler:
    def __init__(self) -> None:
        self.messages: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            Mail(
                mail_from=envelope.mail_from,
                rcpt_tos=list(envelope.rcpt_tos),
                content=bytes(envelope.original_content or envelope.content),
            )
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server() -> Iterator[tuple[int, list[Mail]]]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1: yields its port and the received mails."""
    handler = _MailHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield controller.port, handler.messages
    finally:
        controller.stop()
