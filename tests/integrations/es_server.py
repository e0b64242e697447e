"""A loopback HTTP server answering ``_bulk``, ``_index_template`` and ``_ilm/policy`` as
Elasticsearch does, from recorded answers (``tests/data/elasticsearch``, see its
PROVENANCE.md).

It parses each ``_bulk`` body as Elasticsearch would (action line, source line) and
keeps what it indexed by index and id, so a test reads the cluster's state rather
than what the client meant to send. Scripted faults: whole-request answers (e.g. the
recorded 429), per-document refusals (the recorded ``document_parsing_exception``,
or a 429 item), and a mode that never stops sending an answer.
"""

from __future__ import annotations

import copy
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from tests.support.quiet_http import QuietHTTPServer

DATA = Path(__file__).parent.parent / "data" / "elasticsearch"


def recorded(name: str) -> Any:
    """A recorded answer body."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@dataclass
class ClusterState:
    """What the stand-in cluster holds and how it will misbehave.

    Attributes:
        documents: Indexed documents by (index, id).
        puts: PUT bodies by path (ILM policies, index templates).
        bulk_requests: Every ``_bulk`` body's (action, source) pairs, in order.
        whole_answers: Status codes to answer the next ``_bulk`` requests with, in order
            (429 sends the recorded body with ``Retry-After: 0``).
        refuse_ids: Document ids refused with the recorded parsing error, every time.
        busy_ids: Document ids answered 429 once each (then indexed).
        endless: Answer every request with a body that never ends.
        headers: The request headers seen, in order.
    """

    documents: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    puts: dict[str, Any] = field(default_factory=dict)
    bulk_requests: list[list[tuple[dict[str, Any], dict[str, Any]]]] = field(default_factory=list)
    whole_answers: list[int] = field(default_factory=list)
    refuse_ids: set[str] = field(default_factory=set)
    busy_ids: set[str] = field(default_factory=set)
    endless: bool = False
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _created_item(index: str, doc_id: str, seq_no: int) -> dict[str, Any]:
    item = copy.deepcopy(recorded("bulk_created.json")["items"][0])
    item["index"].update({"_index": index, "_id": doc_id, "_seq_no": seq_no})
    item["index"].pop("_type", None)  # Elasticsearch 8 dropped mapping types
    return item


def _refused_item(index: str, doc_id: str, body: str, status: int) -> dict[str, Any]:
    # The shape of a refused item in the recorded failed-actions answer, carrying the
    # recorded stand-alone error (as Elasticsearch nests it).
    shape = copy.deepcopy(recorded("bulk_failed_actions.json")["items"][0]["update"])
    error = recorded(body)["error"]
    error.pop("root_cause", None)
    shape.update({"_index": index, "_id": doc_id, "status": status, "error": error})
    shape.pop("_type", None)
    return {"index": shape}


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        del format, args

    def _send(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-elastic-product", "Elasticsearch")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _read(self) -> bytes:
        length = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(length)

    def _endless(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            while not self.server.stopping.is_set():
                chunk = b'{"took":1,' + b" " * 1000
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
                time.sleep(0.01)
        except OSError:
            return

    def do_PUT(self) -> None:
        state = self.server.state
        body = self._read()
        with state.lock:
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            state.puts[self.path] = json.loads(body)
        if state.endless:
            self._endless()
            return
        if self.path.startswith(("/_ilm/policy/", "/_index_template/")):
            self._send(200, recorded("acknowledged.json"))
        else:
            self._send(404, {"error": {"type": "not_found", "reason": self.path}, "status": 404})

    def do_POST(self) -> None:
        state = self.server.state
        body = self._read()
        if self.path.split("?")[0] != "/_bulk":
            self._send(404, {"error": {"type": "not_found", "reason": self.path}, "status": 404})
            return
        if state.endless:
            self._endless()
            return
        lines = body.decode().splitlines()
        pairs = [
            (json.loads(a), json.loads(s)) for a, s in zip(lines[::2], lines[1::2], strict=True)
        ]
        with state.lock:
            state.headers.append({k.lower(): v for k, v in self.headers.items()})
            state.bulk_requests.append(pairs)
            whole = state.whole_answers.pop(0) if state.whole_answers else None
        if whole is not None:
            if whole == 429:
                self._send(429, recorded("rejected_execution_429.json"), {"Retry-After": "0"})
            elif whole == 400:
                self._send(400, recorded("document_parsing_exception.json"))
            else:
                self._send(
                    whole, {"error": {"type": "unavailable", "reason": "x"}, "status": whole}
                )
            return
        items = []
        errors = False
        with state.lock:
            for action, source in pairs:
                target = action["index"]
                index, doc_id = target["_index"], target["_id"]
                if doc_id in state.refuse_ids:
                    items.append(
                        _refused_item(index, doc_id, "document_parsing_exception.json", 400)
                    )
                    errors = True
                elif doc_id in state.busy_ids:
                    state.busy_ids.discard(doc_id)
                    items.append(_refused_item(index, doc_id, "rejected_execution_429.json", 429))
                    errors = True
                else:
                    state.documents[(index, doc_id)] = source
                    items.append(_created_item(index, doc_id, len(state.documents)))
        answer = recorded("bulk_created.json")
        answer.update({"took": 3, "errors": errors, "items": items})
        self._send(200, answer)


class _Server(QuietHTTPServer):
    def __init__(self, state: ClusterState) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state
        self.stopping = threading.Event()


@contextmanager
def elasticsearch_standin(
    tls: ssl.SSLContext | None = None,
) -> Iterator[tuple[str, ClusterState]]:
    """Run the stand-in on 127.0.0.1 (over TLS with ``tls``); yields its base URL and state."""
    state = ClusterState()
    server = _Server(state)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
