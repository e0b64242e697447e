"""An HTTP server for the tests' stand-ins that does not print when a client hangs up.

``socketserver`` prints a traceback to ``sys.stderr`` for every error a handler thread
meets, including a client that closed its connection (a reset, a broken pipe): normal
for HTTP clients, which drop kept-alive connections when they are done. A command run
in process with its output captured then finds that traceback in its own stderr, and
a test of what the command prints fails now and then. Other errors still print.
"""

from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any

__all__ = ["QuietHTTPServer"]


class QuietHTTPServer(ThreadingHTTPServer):
    """A ``ThreadingHTTPServer`` with daemon threads that ignores clients hanging up."""

    daemon_threads = True
    clients_gone = 0
    """Connections the client closed while a handler was using them."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            self.clients_gone += 1
            return
        super().handle_error(request, client_address)
