"""``certvigil serve`` in a child process on loopback, which a test may kill and restart."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

_LISTENING = re.compile(r"listening on (https?://\S+?)/?$")
_READY = re.compile(r"worker \d+ ready$")
START_TIMEOUT_S = 60.0


class ServeProcess:
    """A real server process; ``url`` is its base URL while it runs.

    Args:
        config: The server's configuration file.
        port: The port to listen on, 0 for any (kept across restarts).
        extra: More command-line arguments (``--workers 2``).
    """

    def __init__(self, config: Path, *, port: int = 0, extra: tuple[str, ...] = ()) -> None:
        self.config = config
        self.port = port
        self.extra = extra
        self.url = ""
        self.log: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> str:
        """Starts the server and waits until every worker says it is ready; returns the
        base URL."""
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certvigil",
                "serve",
                "--config",
                str(self.config),
                "--listen",
                f"127.0.0.1:{self.port}",
                *self.extra,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        found = threading.Event()
        process = self._process
        workers = (
            int(self.extra[self.extra.index("--workers") + 1]) if "--workers" in self.extra else 1
        )
        ready = [0]

        def read() -> None:
            stream = process.stderr
            if stream is None:
                found.set()
                return
            with stream:
                for line in stream:
                    self.log.append(line.rstrip("\n"))
                    match = _LISTENING.search(line.strip())
                    if match:
                        self.url = match.group(1)
                    if _READY.search(line.strip()):
                        ready[0] += 1
                        if ready[0] == workers:
                            found.set()
            found.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        if not found.wait(START_TIMEOUT_S) or not self.url:
            self.kill()
            raise RuntimeError("certvigil serve did not start:\n" + "\n".join(self.log))
        self.port = int(self.url.rsplit(":", 1)[1])
        return self.url

    @property
    def pid(self) -> int:
        """The server's process id (the supervisor's, with ``--workers``)."""
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    def kill(self) -> None:
        """Kills the server at once (SIGKILL to its process group): nothing is flushed."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait(30)
        self._finish()

    def _finish(self) -> None:
        # The reader ends (and closes the pipe) at the end of the child's output.
        if self._reader is not None:
            self._reader.join(30)
        self._reader = None
        self._process = None

    def stop(self) -> None:
        """Stops the server politely (SIGTERM), killing it if it lingers."""
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._finish()

    def __enter__(self) -> ServeProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
