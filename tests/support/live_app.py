"""An ASGI app served by uvicorn on 127.0.0.1 in a thread of the test process."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

START_TIMEOUT_S = 30.0


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serves ``app`` (lifespan included) until the block ends; yields its base URL."""
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # as certvigil serve: server/proxies.py reads X-Forwarded-*
    )
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="uvicorn", daemon=True)
    thread.start()
    deadline = threading.Event()
    for _ in range(int(START_TIMEOUT_S * 100)):
        if server.started or errors or not thread.is_alive():
            break
        deadline.wait(0.01)
    if not server.started:
        sock.close()
        raise RuntimeError(f"uvicorn did not start: {errors}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)
        sock.close()
        if errors:
            raise errors[0]
