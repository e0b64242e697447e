"""The errors the CT parsers raise, all rooted at ``CtError`` (itself a ``CertvigilError``).

    CtError
    ├── LogListError        a log list that cannot be used (names the field)
    ├── SignatureError      a signature that does not verify, or cannot be checked
    ├── ResponseError       a log answer (get-sth, get-entries) that is not what the API says
    ├── MalformedEntryError one log entry that cannot be parsed (names its index)
    ├── CheckpointError     a checkpoint or signed note that cannot be parsed
    ├── TileError           a tile that cannot be parsed or does not match the tree
    ├── WatchListError      a watched domain that is not a domain name
    └── FetchError          a request to a log that failed (status, deadline, size cap)

Every parser catches its own decoding failures and raises one of these with words
saying what is wrong and where; no other exception leaves a parser on hostile input.
"""

from __future__ import annotations

from certvigil.errors import CertvigilError


class CtError(CertvigilError):
    """Root of the Certificate Transparency errors."""


class LogListError(CtError):
    """A log list that cannot be used.

    Attributes:
        source: Where the list came from (a file name or URL).
        location: The field concerned (``operators[2].logs[0].key``), or ``""``.
        reason: What is wrong with it.
    """

    def __init__(self, source: str, reason: str, *, location: str = "") -> None:
        where = f"{source}: {location}" if location else source
        super().__init__(f"{where}: {reason}")
        self.source = source
        self.location = location
        self.reason = reason


class SignatureError(CtError):
    """A signature that does not verify, or that cannot be checked with the key given."""


class ResponseError(CtError):
    """A log's answer that does not have the shape its API defines.

    Attributes:
        what: The answer concerned (``"get-sth"``, ``"get-entries"``).
        reason: What is wrong with it.
    """

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason


class MalformedEntryError(CtError):
    """One log entry that cannot be parsed.

    Attributes:
        index: The entry's index in its log.
        defect: What is wrong with it, in words.
    """

    def __init__(self, index: int, defect: str) -> None:
        super().__init__(f"entry {index}: {defect}")
        self.index = index
        self.defect = defect


class CheckpointError(CtError):
    """A checkpoint (signed note) that cannot be parsed."""


class TileError(CtError):
    """A tile that cannot be parsed, or whose contents do not match the tree.

    Attributes:
        path: The tile's path (``tile/data/x001/234.p/10``).
        reason: What is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class WatchListError(CtError):
    """A watched domain that cannot be watched.

    Attributes:
        domain: The domain as written.
        reason: Why it was refused.
    """

    def __init__(self, domain: str, reason: str) -> None:
        shown = "".join(c if c.isprintable() else "\ufffd" for c in domain[:200])
        super().__init__(f'watched domain "{shown}": {reason}')
        self.domain = domain
        self.reason = reason


class FetchError(CtError):
    """A request to a log that did not give an answer to parse.

    Raised by the network client (``certvigil.ct.fetch``) after its retries, when the
    log answered with an error status, took longer than the deadline, sent more than
    the size cap or could not be reached.

    Attributes:
        url: The URL asked for.
        reason: What went wrong, in words.
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason
