"""The exceptions certvigil raises, all rooted at CertvigilError.

    CertvigilError
    ├── UsageError            bad command-line use or configuration (exit code 64)
    │   ├── TargetError       a malformed target, with its source and position
    │   └── ConfigError       a malformed configuration file, with field and line
    ├── CertificateLoadError  bytes that are not a certificate, with where they came from
    ├── ObservationFormatError  an observation document that cannot be read, with the field
    ├── ProbeError            a network probe failed (its kind is a FailureKind)
    ├── StoreError            the inventory database refused an operation
    └── DeliveryError         an alert channel did not take a notification

Probe failures met during a scan are not raised to the caller: they become
``ProbeFailure`` records (see ``certvigil.observed.handshake``), so that one bad
endpoint never stops a scan.
"""

from __future__ import annotations


class CertvigilError(Exception):
    """Root of every error certvigil raises on purpose."""


class UsageError(CertvigilError):
    """The user asked for something that cannot be done as asked (exit code 64)."""


class TargetError(UsageError):
    """A target that cannot be parsed.

    Attributes:
        text: The target as written.
        source: Where it came from: ``"argv"``, a file name, or ``"-"`` for stdin.
        position: 1-based argument index or line number in ``source``.
        reason: Why it was refused.
    """

    def __init__(self, text: str, reason: str, *, source: str = "argv", position: int = 0) -> None:
        where = f"{source}:{position}" if position else source
        super().__init__(f'{where}: "{text}": {reason}' if text else f"{where}: {reason}")
        self.text = text
        self.source = source
        self.position = position
        self.reason = reason


class ConfigError(UsageError):
    """A configuration file that cannot be used.

    Attributes:
        path: The file.
        location: The field path (``targets[2].port``) and/or line, if known.
        reason: Why it was refused.
        line: 1-based line in ``path`` of the field concerned, ``None`` when unknown.
        problems: Every single mistake when this error stands for several (each a
            ``ConfigError``); empty when the error is itself one mistake.
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        location: str | None = None,
        line: int | None = None,
        problems: tuple[ConfigError, ...] = (),
    ) -> None:
        file = f"{path}:{line}" if line else path
        where = f"{file}: {location}" if location else file
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.location = location
        self.reason = reason
        self.line = line
        self.problems = problems


class CertificateLoadError(CertvigilError):
    """Bytes that could not be read as an X.509 certificate.

    Attributes:
        source: Where the bytes came from (a file name, ``host:port``, a URL).
        reason: What was wrong with them, in words.
        detail: The parsing library's own text, for ``--debug``; ``None`` when the
            reason says it all.
    """

    def __init__(self, source: str, reason: str, *, detail: str | None = None) -> None:
        super().__init__(f"{source}: not a certificate: {reason}")
        self.source = source
        self.reason = reason
        self.detail = detail


class ObservationFormatError(CertvigilError, ValueError):
    """An observation document (``certvigil.observed.codec``) that cannot be read.

    Attributes:
        field: Where in the document, as a dotted path with list indexes
            (``"observation.handshake.chain_der[1]"``); ``""`` for the whole document.
        reason: What is wrong there.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"observation: {field}: {reason}" if field else f"observation: {reason}")
        self.field = field
        self.reason = reason


class ProbeError(CertvigilError):
    """A network probe failed; carries its classified kind (a FailureKind value).

    Attributes:
        kind: The failure class, e.g. ``"timeout"`` or ``"handshake_failure"``.
        detail: Human-readable detail (the OS error, the TLS alert).
        tls_alert: The TLS alert description when the server sent one.
    """

    def __init__(self, kind: str, detail: str, *, tls_alert: str | None = None) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.tls_alert = tls_alert


class StoreError(CertvigilError):
    """The inventory database could not do what was asked."""


class DeliveryError(CertvigilError):
    """An alert channel did not take a notification.

    Attributes:
        channel: The channel, its URL redacted to ``scheme://host``.
        reason: What went wrong.
        is_permanent: Retrying cannot help (a 4xx answer, a malformed URL).
    """

    def __init__(self, channel: str, reason: str, *, is_permanent: bool = False) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.is_permanent = is_permanent
