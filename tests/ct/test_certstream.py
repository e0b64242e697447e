"""CertStream: real messages read; certvigil's feed served to a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from websockets.asyncio.server import ServerConnection, serve

from certvigil.ct.certstream import (
    CertstreamDomains,
    CertstreamHeartbeat,
    CertstreamMessageError,
    CertstreamUpdate,
    FeedEntry,
    feed_entry,
    parse_certstream_message,
)
from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import FetchError
from certvigil.ct.fetch.certstream import read_certstream
from certvigil.ct.fetch.feed import CertstreamFeed
from certvigil.ct.rfc6962 import parse_get_entries

from .conftest import data

MESSAGES = Path(__file__).resolve().parent.parent / "data" / "certstream"
SEEN = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _message(name: str) -> bytes:
    return (MESSAGES / name).read_bytes()


def test_the_real_full_stream_message_is_read() -> None:
    """certstream-server's Argon2020 example: index, log, names, issuer serial, validity."""
    message = parse_certstream_message(
        _message("calidog_full-stream_example_X509LogEntry_argon2020.json")
    )

    assert isinstance(message, CertstreamUpdate)
    assert (message.is_precert, message.cert_index) == (False, 343999487)
    assert message.log_name == "Google 'Argon2020' log"
    assert message.names.dns_names == ("access.smm-cheap.com", "www.access.smm-cheap.com")
    assert message.serial_hex == "37a3a72033b9aff73a4bed5bb4f7ce6746e"
    assert message.sha1_hex == "84e01801529308e0bc1cdac8b44864768a615632"
    assert message.not_after_utc == datetime(2020, 5, 15, 3, 35, 41, tzinfo=UTC)


def test_the_real_go_server_lite_message_is_read() -> None:
    """certstream-server-go's lite precert message, with its issuer field."""
    message = parse_certstream_message(
        _message("certstream-server-go_lite_example_PrecertLogEntry_yeti2022-2.json")
    )

    assert isinstance(message, CertstreamUpdate)
    assert message.is_precert
    assert message.issuer == "/C=US/CN=R3/O=Let's Encrypt"
    assert message.names.dns_names == ("cmslieferhit.e06.k-k.de",)
    assert message.der is None


def test_the_documented_structure_with_placeholder_der_is_read() -> None:
    """The README's structure parses; its placeholder as_der is not taken for DER."""
    message = parse_certstream_message(
        _message("calidog_README_documented_structure_X509LogEntry_mammoth.json")
    )

    assert isinstance(message, CertstreamUpdate)
    assert message.der is None
    assert message.names.dns_names[0] == "e-zigarette-liquid-shop.de"


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ('{"message_type": "heartbeat", "timestamp": 1}', CertstreamHeartbeat),
        ('{"message_type": "dns_entries", "data": ["A.example.", "bad name"]}', CertstreamDomains),
    ],
)
def test_other_kinds_are_read(raw: str, kind: type) -> None:
    """Heartbeats and dns_entries are recognised; names are normalised, bad ones kept apart."""
    message = parse_certstream_message(raw)

    assert isinstance(message, kind)
    if isinstance(message, CertstreamDomains):
        assert message.names.dns_names == ("a.example",)
        assert message.names.unparsed == ("bad name",)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", ""),
        ('{"message_type": "certificate_update", "data": []}', "data"),
        (
            '{"message_type": "certificate_update", "data": {"update_type": "X509LogEntry",'
            ' "cert_index": -1}}',
            "data.cert_index",
        ),
        ('{"message_type": "dns_entries", "data": [1]}', "data[0]"),
        ('{"message_type": "dns_entries", "data": "x"}', "data"),
    ],
)
def test_broken_messages_name_the_field(raw: str, field: str) -> None:
    """A message of the wrong shape is an error naming the field at fault."""
    with pytest.raises(CertstreamMessageError) as caught:
        parse_certstream_message(raw)

    assert caught.value.field == field


def test_an_oversized_message_is_refused_unread() -> None:
    """A message over the size bound is refused before it is parsed."""
    with pytest.raises(CertstreamMessageError, match="longer than"):
        parse_certstream_message(b" " * (1024 * 1024 + 1))


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=25,
)


@given(st.dictionaries(st.sampled_from(["message_type", "data"]), _values))
@example({"message_type": "certificate_update", "data": {"update_type": "PrecertLogEntry",
          "cert_index": 1, "leaf_cert": {"all_domains": ["x"], "not_before": 1e300}}})  # fmt: skip
def test_any_message_parses_or_fails_cleanly(document: dict[str, object]) -> None:
    """Whatever JSON arrives, the parser returns a message or a CertstreamMessageError."""
    try:
        parse_certstream_message(json.dumps(document))
    except CertstreamMessageError:
        pass


def _real_entries() -> list[LogEntry]:
    body = data(
        "rfc6962/argon2027h1/get-entries_start_380000000_end_380000004_TRUNCATED-from-end_380000031.json"
    )
    batch = parse_get_entries(body, 380000000, 380000004)
    return list(batch.entries)


def _feed_entries() -> list[FeedEntry]:
    return [
        feed_entry(
            e, log_name="Google 'Argon2027h1'", log_url="https://ct.example/a/", seen_utc=SEEN
        )
        for e in _real_entries()
    ]


async def _collect(url: str, count: int) -> list[object]:
    return [m async for m in read_certstream(url, max_messages=count, idle_timeout_s=5)]


def test_the_feed_serves_every_stream_to_real_clients() -> None:
    """Three WebSocket clients (lite, full, domains-only) each get every entry in its form."""
    entries = _feed_entries()

    async def run() -> tuple[list[object], list[object], list[object], httpx.Response]:
        async with CertstreamFeed(port=0, heartbeat_s=None) as feed:
            host, port = feed.address
            base = f"ws://{host}:{port}"
            readers = [
                asyncio.create_task(_collect(f"{base}{path}", len(entries)))
                for path in ("/", "/full-stream", "/domains-only")
            ]
            async with asyncio.timeout(10):  # the three connect
                while feed.stats.clients < 3:
                    await asyncio.sleep(0.01)

            async def source() -> AsyncIterator[FeedEntry]:
                for entry in entries:
                    yield entry

            await feed.run(source())
            lite, full, domains = await asyncio.gather(*readers)
            async with httpx.AsyncClient() as client:
                example_json = await client.get(f"http://{host}:{port}/example.json")
        return lite, full, domains, example_json

    lite, full, domains, example_json = asyncio.run(run())

    assert len(lite) == len(full) == len(domains) == len(entries)
    for sent, got in zip(entries, lite, strict=True):
        assert isinstance(got, CertstreamUpdate)
        assert got.cert_index == sent.index
        assert got.is_precert == sent.is_precert
        assert got.names.dns_names == sent.names.dns_names
        assert got.der is None  # the lite stream carries no DER
    for sent, got in zip(entries, full, strict=True):
        assert isinstance(got, CertstreamUpdate)
        assert got.der == sent.certificate
        assert got.serial_hex and got.not_after_utc is not None
    assert all(isinstance(m, CertstreamDomains) for m in domains)
    assert example_json.status_code == 200
    assert example_json.json()["data"]["cert_index"] == entries[-1].index


def test_unknown_paths_and_an_empty_feed_answer_plainly() -> None:
    """A path the feed does not serve is 404; example.json before any entry is 503."""

    async def run() -> tuple[int, int]:
        async with CertstreamFeed(port=0, heartbeat_s=None) as feed:
            host, port = feed.address
            async with httpx.AsyncClient() as client:
                missing = await client.get(f"http://{host}:{port}/nothing")
                early = await client.get(f"http://{host}:{port}/example.json")
        return missing.status_code, early.status_code

    assert asyncio.run(run()) == (404, 503)


def test_a_slow_client_loses_messages_instead_of_stalling_the_feed() -> None:
    """A client that never reads has its bounded queue fill, and the rest is dropped."""
    entry = _feed_entries()[0]

    async def run() -> tuple[int, int]:
        async with CertstreamFeed(port=0, client_queue=3, heartbeat_s=None) as feed:
            host, port = feed.address
            from websockets.asyncio.client import connect

            async with connect(f"ws://{host}:{port}/full-stream"):
                async with asyncio.timeout(10):
                    while feed.stats.clients < 1:
                        await asyncio.sleep(0.01)
                for _ in range(50):
                    feed.publish(entry)  # never waits, whatever the client does
                return feed.stats.published, feed.stats.dropped

    published, dropped = asyncio.run(run())

    assert published == 50
    assert dropped >= 40


def test_the_client_reads_recorded_messages_and_reports_bad_ones() -> None:
    """A server sending the three real messages and a broken one: four results, in order."""
    sent = [_message(p.name).decode() for p in sorted(MESSAGES.glob("*.json"))] + ["{broken"]

    async def run() -> list[object]:
        async def handler(connection: ServerConnection) -> None:
            for text in sent:
                await connection.send(text)
            await connection.close()

        async with serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            return [m async for m in read_certstream(f"ws://127.0.0.1:{port}/", idle_timeout_s=5)]

    got = asyncio.run(run())

    assert [type(m) for m in got] == [CertstreamUpdate] * 3 + [CertstreamMessageError]


def test_a_silent_server_is_given_up_on() -> None:
    """A server that accepts and then says nothing ends the stream at the idle deadline."""

    async def run() -> None:
        async def handler(connection: ServerConnection) -> None:
            await connection.wait_closed()  # says nothing until the client gives up

        async with serve(handler, "127.0.0.1", 0) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async for _ in read_certstream(f"ws://127.0.0.1:{port}/", idle_timeout_s=0.3):
                pass

    with pytest.raises(FetchError, match=r"no message for 0\.3 s"):
        asyncio.run(run())


def test_no_server_is_a_clear_error() -> None:
    """Nothing listening: a FetchError naming the URL, not a traceback."""

    async def run() -> None:
        async for _ in read_certstream("ws://127.0.0.1:9/", open_timeout_s=2):
            pass

    with pytest.raises(FetchError, match=r"ws://127\.0\.0\.1:9/"):
        asyncio.run(run())
