"""Follow a server's TLS record stream and note the alerts it sends in the clear.

A TLS library reports a received alert through its own error text, and the words differ
between versions (OpenSSL 3.0 says ``SSLV3_ALERT_HANDSHAKE_FAILURE``, later ones
``TLS_ALERT_HANDSHAKE_FAILURE``). The alert itself is two bytes in a record of type 21:
``level`` (1 warning, 2 fatal) and ``description``. :class:`AlertWatcher` reads them from
the bytes the server sent, fed in as they arrive, with constant memory. Alerts sent after
the server switched to encryption (after ChangeCipherSpec, or in TLS 1.3 after the
ServerHello, where every later record is type 23) cannot be read here; the watcher stops
at the first such record.
"""

from __future__ import annotations

from certvigil.tls.records import AlertReply

_CHANGE_CIPHER_SPEC = 20
_ALERT = 21
_HANDSHAKE = 22
_APPLICATION_DATA = 23
_RECORD_TYPES = frozenset({_CHANGE_CIPHER_SPEC, _ALERT, _HANDSHAKE, _APPLICATION_DATA, 24})
_MAX_ALERTS = 16


ReceivedAlert = AlertReply
"""One alert record read from the wire: the same value the hello parser returns."""


class AlertWatcher:
    """Reads the record framing of a server's byte stream, keeping the plaintext alerts.

    Feed it every byte received, in order. It keeps a 5-byte header at most, so a
    server that never stops sending costs no memory here.

    Attributes:
        alerts: The alerts seen, oldest first (at most 16).
        last_record_was_alert: Whether the last complete record was a plaintext alert.
        stopped: Why the watcher stopped reading (``"encrypted"``, ``"not_tls"``), or
            ``None`` while it still follows the stream.
    """

    def __init__(self) -> None:
        """Start at the first byte of the stream."""
        self.alerts: list[ReceivedAlert] = []
        self.last_record_was_alert = False
        self.stopped: str | None = None
        self._header = bytearray()
        self._body = bytearray()
        self._remaining = 0
        self._content_type = 0

    def feed(self, data: bytes) -> None:
        """Follow ``data``, the next bytes the server sent."""
        position = 0
        while position < len(data) and self.stopped is None:
            if self._remaining:
                take = min(self._remaining, len(data) - position)
                if self._content_type == _ALERT and len(self._body) < 2:
                    self._body += data[position : position + min(take, 2 - len(self._body))]
                self._remaining -= take
                position += take
                if not self._remaining:
                    self._record_done()
                continue
            need = 5 - len(self._header)
            self._header += data[position : position + need]
            position += min(need, len(data) - position)
            if len(self._header) == 5:
                self._start_record()

    def decisive_alert(self) -> ReceivedAlert | None:
        """The alert that most likely ended the handshake, or ``None``.

        The last record, when it was an alert (whatever its level); otherwise the last
        fatal alert. A warning the client tolerated (``unrecognized_name`` in TLS 1.2)
        followed by more records is not blamed for a later failure.
        """
        if self.last_record_was_alert and self.alerts:
            return self.alerts[-1]
        fatal = [alert for alert in self.alerts if alert.is_fatal]
        return fatal[-1] if fatal else None

    def _start_record(self) -> None:
        content_type = self._header[0]
        length = int.from_bytes(self._header[3:5], "big")
        self._header.clear()
        if content_type not in _RECORD_TYPES:
            self.stopped = "not_tls"
            return
        if content_type == _APPLICATION_DATA or (content_type == _ALERT and length != 2):
            # Encrypted from here on (an encrypted alert is longer than two bytes).
            self.stopped = "encrypted"
            return
        self._content_type = content_type
        self._remaining = length
        self._body.clear()
        if not length:
            self._record_done()

    def _record_done(self) -> None:
        self.last_record_was_alert = self._content_type == _ALERT
        if self._content_type == _ALERT and len(self.alerts) < _MAX_ALERTS:
            self.alerts.append(ReceivedAlert(level=self._body[0], description=self._body[1]))
        elif self._content_type == _ALERT:
            self.alerts[-1] = ReceivedAlert(level=self._body[0], description=self._body[1])
        if self._content_type == _CHANGE_CIPHER_SPEC:
            # TLS 1.2 and earlier encrypt every record after this one; TLS 1.3 sends
            # this record only for middlebox compatibility, and encrypts anyway.
            self.stopped = "encrypted"
