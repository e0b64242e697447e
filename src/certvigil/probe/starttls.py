"""The plain-text dialogues that upgrade a connection to TLS in-band (STARTTLS and kin).

Each dialogue speaks just enough of its protocol to reach the point where the next byte
on the wire is the client's ClientHello: SMTP ``EHLO``/``STARTTLS`` (RFC 3207), IMAP
``STARTTLS`` (RFC 3501), POP3 ``STLS`` (RFC 2595), FTP ``AUTH TLS`` (RFC 4217), the LDAP
StartTLS extended operation (RFC 4511 §4.14), XMPP ``<starttls/>`` (RFC 6120 §5) and the
PostgreSQL ``SSLRequest``. A refusal or an unexpected reply raises ``ProbeError`` with kind
``starttls_failure`` and the server's words in the detail.
"""

from __future__ import annotations

import asyncio
import socket
import struct

from certvigil.errors import ProbeError
from certvigil.observed.handshake import FailureKind
from certvigil.probe.sockio import receive, send_all
from certvigil.targets.target import StartTLS
from certvigil.text_escape import visible

_MAX_REPLY_BYTES = 65536
_MAX_DIALOGUE_BYTES = 262144
_CLIENT_NAME = "certvigil.invalid"

# LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0]
# "1.3.6.1.4.1.1466.20037" } }, BER-encoded (RFC 4511 §4.14.1).
_LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"
_LDAP_STARTTLS_REQUEST = (
    b"\x30\x1d\x02\x01\x01\x77\x18\x80" + bytes([len(_LDAP_STARTTLS_OID)]) + _LDAP_STARTTLS_OID
)
_LDAP_EXTENDED_RESPONSE_TAG = 0x78  # [APPLICATION 24], constructed

_POSTGRES_SSL_REQUEST = struct.pack("!II", 8, 80877103)


class PlainChannel:
    """Buffered plain-text reads and writes on a connected non-blocking socket.

    Reads never consume more than the caller asks for from the kernel's point of view:
    whatever was read past the end of the last reply stays in ``leftover``, so that a
    server that talks after agreeing to upgrade can be detected. Each read gives the
    event loop a turn (the caller's time-out holds against a server that never stops
    talking), one reply is capped at 64 KiB and the whole dialogue at 256 KiB.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        """Wrap a connected, non-blocking socket."""
        self._loop = loop
        self._sock = sock
        self._buffer = bytearray()
        self._received = 0

    @property
    def leftover(self) -> bytes:
        """Bytes received but not yet consumed by the dialogue."""
        return bytes(self._buffer)

    async def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        await send_all(self._loop, self._sock, data)

    async def _fill(self) -> None:
        data = await receive(self._loop, self._sock, 4096)
        if not data:
            raise ProbeError(
                FailureKind.STARTTLS_FAILURE,
                "the server closed the connection during the STARTTLS dialogue"
                + (f" after sending {_shown(bytes(self._buffer))}" if self._buffer else ""),
            )
        self._buffer += data
        self._received += len(data)
        if self._received > _MAX_DIALOGUE_BYTES:
            raise ProbeError(
                FailureKind.STARTTLS_FAILURE,
                f"the server sent more than {_MAX_DIALOGUE_BYTES} bytes without finishing "
                "the STARTTLS dialogue",
            )
        if len(self._buffer) > _MAX_REPLY_BYTES:
            raise ProbeError(
                FailureKind.STARTTLS_FAILURE,
                f"the server's reply exceeds {_MAX_REPLY_BYTES} bytes without ending",
            )

    async def read_line(self) -> str:
        """One line, without its CR LF, decoded leniently."""
        while (end := self._buffer.find(b"\n")) < 0:
            await self._fill()
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        return line.rstrip(b"\r\n").decode("utf-8", "replace")

    async def read_exactly(self, size: int) -> bytes:
        """Exactly ``size`` bytes."""
        while len(self._buffer) < size:
            await self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    async def read_until_any(self, markers: tuple[bytes, ...]) -> bytes:
        """Everything up to and including the first of ``markers`` to appear."""
        while True:
            ends = [
                position + len(marker)
                for marker in markers
                if (position := self._buffer.find(marker)) >= 0
            ]
            if ends:
                end = min(ends)
                data = bytes(self._buffer[:end])
                del self._buffer[:end]
                return data
            await self._fill()


async def negotiate_starttls(
    protocol: StartTLS, channel: PlainChannel, *, server_name: str
) -> None:
    """Speak ``protocol`` on ``channel`` until the server is ready for the TLS handshake.

    Args:
        protocol: Which dialogue to speak.
        channel: The connected plain-text channel.
        server_name: The name the client addresses (XMPP ``to``).

    Raises:
        ProbeError: With kind ``starttls_failure`` when the server refuses the upgrade,
            answers something unexpected or closes the connection.
        OSError: When the connection breaks (classified by the caller).
    """
    await _DIALOGUES[protocol](channel, server_name)


async def _smtp(channel: PlainChannel, server_name: str) -> None:
    code, lines = await _read_smtp_reply(channel)
    if code != 220:
        raise _refused("SMTP", "greeting", lines)
    await channel.send(f"EHLO {_CLIENT_NAME}\r\n".encode())
    code, lines = await _read_smtp_reply(channel)
    if code != 250:
        raise _refused("SMTP", "EHLO", lines)
    if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines[1:]):
        raise _refused("SMTP", "EHLO (no STARTTLS among the extensions)", lines)
    await channel.send(b"STARTTLS\r\n")
    code, lines = await _read_smtp_reply(channel)
    if code != 220:
        raise _refused("SMTP", "STARTTLS", lines)


async def _ftp(channel: PlainChannel, server_name: str) -> None:
    code, lines = await _read_smtp_reply(channel)  # FTP replies share SMTP's framing
    if code != 220:
        raise _refused("FTP", "greeting", lines)
    await channel.send(b"AUTH TLS\r\n")
    code, lines = await _read_smtp_reply(channel)
    if code != 234:
        raise _refused("FTP", "AUTH TLS", lines)


async def _read_smtp_reply(channel: PlainChannel) -> tuple[int, list[str]]:
    """A possibly multi-line ``NNN-text`` ... ``NNN text`` reply, as (code, lines)."""
    lines: list[str] = []
    while True:
        line = await channel.read_line()
        lines.append(line)
        if len(line) < 3 or not line[:3].isdigit():
            raise _refused("server", "reply", lines)
        if len(line) == 3 or line[3] != "-":
            return int(line[:3]), lines
        if len(lines) > 200:
            raise _refused("server", "reply (too many lines)", lines[-3:])


async def _imap(channel: PlainChannel, server_name: str) -> None:
    greeting = await channel.read_line()
    if not greeting.upper().startswith("* OK"):
        raise _refused("IMAP", "greeting", [greeting])
    await channel.send(b"cv1 STARTTLS\r\n")
    for _ in range(200):
        line = await channel.read_line()
        if line.startswith("* "):
            continue
        if line.upper().startswith("CV1 OK"):
            return
        raise _refused("IMAP", "STARTTLS", [line])
    raise _refused("IMAP", "STARTTLS (no tagged answer)", [])


async def _pop3(channel: PlainChannel, server_name: str) -> None:
    greeting = await channel.read_line()
    if not greeting.startswith("+OK"):
        raise _refused("POP3", "greeting", [greeting])
    await channel.send(b"STLS\r\n")
    answer = await channel.read_line()
    if not answer.startswith("+OK"):
        raise _refused("POP3", "STLS", [answer])


async def _ldap(channel: PlainChannel, server_name: str) -> None:
    await channel.send(_LDAP_STARTTLS_REQUEST)
    tag = (await channel.read_exactly(1))[0]
    if tag != 0x30:
        raise _refused("LDAP", "StartTLS", [f"not an LDAPMessage (tag 0x{tag:02x})"])
    length = await _read_ber_length(channel)
    body = await channel.read_exactly(length)
    result_code, diagnostic = _parse_ldap_extended_response(body)
    if result_code != 0:
        words = f"resultCode {result_code}" + (f": {diagnostic}" if diagnostic else "")
        raise _refused("LDAP", "StartTLS", [words])


async def _read_ber_length(channel: PlainChannel) -> int:
    first = (await channel.read_exactly(1))[0]
    if first < 0x80:
        return first
    count = first & 0x7F
    if count == 0 or count > 3:
        raise _refused("LDAP", "StartTLS", [f"unsupported BER length form 0x{first:02x}"])
    return int.from_bytes(await channel.read_exactly(count), "big")


def _parse_ldap_extended_response(body: bytes) -> tuple[int, str]:
    """(resultCode, diagnosticMessage) from an LDAPMessage body holding an ExtendedResponse."""
    elements = _ber_elements(body)
    if len(elements) < 2 or elements[0][0] != 0x02 or elements[1][0] != _LDAP_EXTENDED_RESPONSE_TAG:
        raise _refused("LDAP", "StartTLS", ["the answer is not an ExtendedResponse"])
    fields = _ber_elements(elements[1][1])
    if len(fields) < 3 or fields[0][0] != 0x0A:
        raise _refused("LDAP", "StartTLS", ["the ExtendedResponse has no resultCode"])
    result_code = int.from_bytes(fields[0][1], "big")
    diagnostic = fields[2][1].decode("utf-8", "replace")
    return result_code, diagnostic


def _ber_elements(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, contents) of each definite-length BER element in ``data``."""
    elements: list[tuple[int, bytes]] = []
    position = 0
    while position < len(data):
        if position + 2 > len(data):
            raise _refused("LDAP", "StartTLS", ["truncated BER element"])
        tag = data[position]
        length = data[position + 1]
        position += 2
        if length >= 0x80:
            count = length & 0x7F
            if count == 0 or count > 3 or position + count > len(data):
                raise _refused("LDAP", "StartTLS", ["malformed BER length"])
            length = int.from_bytes(data[position : position + count], "big")
            position += count
        if position + length > len(data):
            raise _refused("LDAP", "StartTLS", ["truncated BER element"])
        elements.append((tag, data[position : position + length]))
        position += length
    return elements


async def _xmpp(channel: PlainChannel, server_name: str) -> None:
    opening = (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' "
        f"to='{_xml_escape(server_name)}' version='1.0'>"
    )
    await channel.send(opening.encode())
    features = await channel.read_until_any((b"</stream:features>", b"</stream:stream>"))
    if b"</stream:stream>" in features or b"urn:ietf:params:xml:ns:xmpp-tls" not in features:
        raise _refused("XMPP", "stream features (no starttls offered)", [_shown(features)])
    await channel.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    answer = await channel.read_until_any((b"/>", b"</proceed>", b"</failure>"))
    if b"<proceed" not in answer:
        raise _refused("XMPP", "starttls", [_shown(answer)])


async def _postgres(channel: PlainChannel, server_name: str) -> None:
    await channel.send(_POSTGRES_SSL_REQUEST)
    answer = await channel.read_exactly(1)
    if answer == b"S":
        return
    if answer == b"N":
        raise _refused("PostgreSQL", "SSLRequest", ["N (the server does not accept SSL)"])
    raise _refused("PostgreSQL", "SSLRequest", [_shown(answer)])


def _refused(protocol: str, step: str, lines: list[str]) -> ProbeError:
    said = " | ".join(line for line in lines if line)[:300]
    return ProbeError(
        FailureKind.STARTTLS_FAILURE,
        f"{protocol} {step} refused or unexpected" + (f": {said}" if said else ""),
    )


def _shown(data: bytes) -> str:
    return data[:200].decode("utf-8", "replace")


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("'", "&apos;")


_DIALOGUES = {
    StartTLS.SMTP: _smtp,
    StartTLS.IMAP: _imap,
    StartTLS.POP3: _pop3,
    StartTLS.FTP: _ftp,
    StartTLS.LDAP: _ldap,
    StartTLS.XMPP: _xmpp,
    StartTLS.POSTGRES: _postgres,
}


# A few bytes that only one plain-text protocol opens with (or answers garbage with).
_LDAP_DISCONNECTION_OID = b"1.3.6.1.4.1.1466.20036"
_HINT_BYTES = 512


def plaintext_service_hint(first_bytes: bytes) -> str | None:
    """What plain-text service a server that answered a ClientHello seems to run.

    Mail, directory and database servers on an unusual port greet in plain text (or
    complain about the ClientHello in their own protocol); this names the protocol and
    the option that would reach their TLS.

    Args:
        first_bytes: The start of what the server sent.

    Returns:
        A sentence such as ``this looks like SMTP: try --starttls smtp``, or ``None``
        when the bytes match no protocol known here.
    """
    data = first_bytes[:_HINT_BYTES]
    upper = data.upper()
    protocol: str | None = None
    option: str | None = None
    if upper.startswith(b"HTTP/") or upper.lstrip().startswith((b"<!DOCTYPE HTML", b"<HTML")):
        return "this looks like plain HTTP: the port serves http://, not https://"
    if upper.startswith(b"SSH-"):
        return "this looks like SSH, which does not use TLS"
    if len(data) >= 4 and data[:3] == b"220" and data[3:4] in (b" ", b"-"):
        if b"FTP" in upper and b"SMTP" not in upper:
            protocol, option = "FTP", "ftp"
        elif any(word in upper for word in (b"SMTP", b"MAIL", b"POSTFIX", b"EXIM")):
            protocol, option = "SMTP", "smtp"
        else:
            return "this looks like SMTP or FTP: try --starttls smtp or --starttls ftp"
    elif upper.startswith((b"* OK", b"* PREAUTH")):
        protocol, option = "IMAP", "imap"
    elif upper.startswith(b"+OK"):
        protocol, option = "POP3", "pop3"
    elif upper.lstrip().startswith((b"<?XML", b"<STREAM:")):
        protocol, option = "XMPP", "xmpp"
    elif data[:1] == b"E" and b"SFATAL" in data:
        protocol, option = "PostgreSQL", "postgres"
    elif data[:1] == b"\x30" and _LDAP_DISCONNECTION_OID in data:
        protocol, option = "LDAP", "ldap"
    if protocol is None or option is None:
        return None
    return f"this looks like {protocol}: try --starttls {option}"


def quoted_start(data: bytes, *, limit: int = 60) -> str:
    """The start of ``data`` as text safe to show: control and bidi characters escaped.

    Args:
        data: Bytes a server sent.
        limit: Most characters kept (an ellipsis marks a cut).

    Returns:
        Printable text, ``\\x1b``-style escapes for everything else.
    """
    text = data.decode("utf-8", "replace")
    return visible(text[:limit]) + ("…" if len(text) > limit else "")
