"""Agent benchmark: peak memory and time of ``certvigil agent --once`` over N targets.

Starts the real ``certvigil serve`` on 127.0.0.1 (SQLite in a temporary directory),
makes an agent key, and runs ``certvigil agent --once`` as a child process on
``--targets`` endpoints (default 10,000): loopback addresses 127.3.x.y on a closed port,
so each probe ends in "connection refused" at once and the figure is the agent's own
cost (scheduling, observation documents, outbox, sending), not the network's. Prints
the child's peak resident memory (``wait4``), wall time, and the observations the
server stored.

    .venv/bin/python bench/server_agent_memory.py --targets 1000   # small
    .venv/bin/python bench/server_agent_memory.py                  # 10,000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from certvigil.server.keys import Scope, create_key
from certvigil.store import open_store
from certvigil.store.models import OBSERVATIONS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        db = f"sqlite:///{directory / 'server.db'}"
        with open_store(db) as store:
            key = create_key(store, name="bench", scope=Scope.AGENT, now=datetime.now(UTC)).token
        server_config = directory / "server.yaml"
        server_config.write_text(json.dumps({"database_url": db}), encoding="utf-8")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certvigil",
                "serve",
                "-c",
                str(server_config),
                "--listen",
                "127.0.0.1:0",
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        url = ""
        assert server.stderr is not None
        for line in server.stderr:
            found = re.search(r"listening on (http://\S+?)/?$", line.strip())
            if found:
                url = found.group(1)
            if "ready" in line:
                break
        targets = [
            {"host": f"127.3.{n // 250}.{n % 250 + 1}", "port": 9} for n in range(args.targets)
        ]
        agent_config = directory / "agent.json"
        agent_config.write_text(
            json.dumps(
                {
                    "server": {"url": url, "key": key, "name": "bench"},
                    "scan": {"timeout": 2, "concurrency": 256},
                    "logging": {"file": str(directory / "agent.log")},
                    "targets": targets,
                }
            ),
            encoding="utf-8",
        )
        try:
            started = time.perf_counter()
            agent = subprocess.Popen(
                [sys.executable, "-m", "certvigil", "agent", "-c", str(agent_config), "--once"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _pid, status, usage = os.wait4(agent.pid, 0)
            elapsed = time.perf_counter() - started
            agent.returncode = os.waitstatus_to_exitcode(status)
        finally:
            server.terminate()
            server.wait(30)
        with open_store(db) as store, store.read() as connection:
            stored = connection.execute(select(func.count()).select_from(OBSERVATIONS)).scalar()
    print(
        f"agent --once over {args.targets:,} targets: exit {agent.returncode}, "
        f"{elapsed:.1f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MiB, "
        f"{stored:,} observations stored by the server"
    )
    print("(figures taken on a shared 2-core machine under other load: indicative only)")


if __name__ == "__main__":
    main()
