"""A real headless Chromium (Debian's, driven by Selenium) and a real server on loopback."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser_available() -> bool:
    """Whether Debian's chromium and chromium-driver are installed."""
    return shutil.which(CHROMIUM) is not None and shutil.which(CHROMEDRIVER) is not None


def artefacts_dir() -> Path:
    """Where screenshots go: ``$CERTVIGIL_ARTEFACTS`` or ``tmp/artefacts`` (not committed)."""
    root = os.environ.get("CERTVIGIL_ARTEFACTS") or str(
        Path(__file__).resolve().parents[3] / "tmp" / "artefacts"
    )
    path = Path(root) / "dashboard"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def serve(app: FastAPI, *, lifespan: bool = False) -> Iterator[str]:
    """Runs ``app`` under uvicorn on 127.0.0.1 (a port of its own) in a thread.

    The listening socket is bound and listening before the thread starts, so the first
    request waits in its backlog rather than racing the start-up.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="warning",
            lifespan="on" if lifespan else "off",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def new_driver(scratch: Path) -> Any:
    """A headless Chromium recording its network requests in the performance log.

    ``scratch`` is its temporary directory: Chromium leaves its singleton-socket
    directory behind when chromedriver stops it, which would pile up in /tmp.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        # No calls home from the browser itself, which would blur the request log.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    service = Service(CHROMEDRIVER, env={**os.environ, "TMPDIR": str(scratch)})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    driver.implicitly_wait(0)
    return driver


def requested_urls(driver: Any) -> list[str]:
    """URLs the browser requested since the last call (from the DevTools network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
