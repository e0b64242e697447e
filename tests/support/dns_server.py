"""A tiny authoritative DNS server on 127.0.0.1 (UDP, port 0) for tests, built on dnspython.

It answers from dicts of CAA and TXT record sets, A records and CNAMEs, NXDOMAIN for
names it does not hold, and on request SERVFAIL or no answer at all (a silent server)
for chosen names.
Every query is recorded, so a test can check which names were asked.
"""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class LoopbackDns:
    """The server; fill ``caa``, ``txt``, ``a``, ``cnames``, ``names`` (exist, no CAA),
    ``servfail``, ``silent``."""

    def __init__(self) -> None:
        self.caa: dict[str, list[str]] = {}
        self.txt: dict[str, list[str]] = {}
        self.a: dict[str, str] = {}
        self.cnames: dict[str, str] = {}
        self.names: set[str] = set()
        self.servfail: set[str] = set()
        self.silent: set[str] = set()
        self.queries: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        """The UDP port it listens on."""
        return int(self._socket.getsockname()[1])

    def __enter__(self) -> LoopbackDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            reply = self._reply(query)
            if reply is not None:
                self._socket.sendto(reply.to_wire(), peer)

    def _reply(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        self.queries.append(name)
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        owner = question.name
        if name in self.txt and question.rdtype == dns.rdatatype.TXT:
            quoted = ['"' + text.replace('"', '\\"') + '"' for text in self.txt[name]]
            response.answer.append(dns.rrset.from_text_list(owner, 300, "IN", "TXT", quoted))
            return response
        if name in self.a and question.rdtype == dns.rdatatype.A:
            response.answer.append(dns.rrset.from_text(owner, 60, "IN", "A", self.a[name]))
            return response
        if name in self.txt or name in self.a:
            return response  # the name exists, without records of this type
        while name in self.cnames:
            target = self.cnames[name]
            response.answer.append(dns.rrset.from_text(owner, 300, "IN", "CNAME", target + "."))
            owner, name = dns.name.from_text(target + "."), target
        if name in self.caa and question.rdtype == dns.rdatatype.CAA:
            records = dns.rrset.from_text_list(owner, 300, "IN", "CAA", self.caa[name])
            response.answer.append(records)
        elif name not in self.caa and name not in self.names:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response
