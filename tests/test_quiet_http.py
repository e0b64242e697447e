"""The tests' HTTP stand-ins stay silent when a client hangs up mid-request."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.quiet_http import QuietHTTPServer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()


def _reset_mid_request(server: ThreadingHTTPServer) -> None:
    """Send half a request line, then close with a reset (SO_LINGER 0)."""
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port))) as client:
        client.sendall(b"GET / HT")
        time.sleep(0.1)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("quiet", [True, False])
def test_a_client_reset_prints_nothing_on_the_quiet_server_only(
    capsys: pytest.CaptureFixture[str], quiet: bool
) -> None:
    server: ThreadingHTTPServer = (
        QuietHTTPServer(("127.0.0.1", 0), _Handler)
        if quiet
        else ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    )
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        _reset_mid_request(server)
        if quiet:
            assert isinstance(server, QuietHTTPServer)
            assert _wait_for(lambda: server.clients_gone == 1)
            assert capsys.readouterr().err == ""
        else:
            # What the stand-ins did before: the reset lands in captured stderr.
            printed: list[str] = []

            def reset_printed() -> bool:
                printed.append(capsys.readouterr().err)
                return "ConnectionResetError" in "".join(printed)

            assert _wait_for(reset_printed)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
