"""Names of an entry and its dedup keys, on real precerts and certificates."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.codec import DecodeError
from certvigil.ct.der import (
    OID_SUBJECT_ALT_NAME,
    certificate_tbs,
    find_extension,
    parse_tbs,
    tbs_extensions,
)
from certvigil.ct.entry import EntryType, LogEntry, TimestampedEntry
from certvigil.ct.errors import MalformedEntryError
from certvigil.ct.names import (
    entry_dedup_keys,
    entry_issuer,
    entry_names,
    normalize_name,
    to_unicode,
)
from certvigil.ct.rfc6962 import parse_get_entries
from certvigil.ct.static_ct import data_tile, parse_data_tile
from certvigil.files.certificates import load_certificate_file
from tests.ct.conftest import DATA, data

CERTS = DATA.parent / "certs"
NAVIGLI = "static-ct/navigli2025h2/"
ARGON = (
    "rfc6962/argon2027h1/"
    "get-entries_start_380000000_end_380000004_TRUNCATED-from-end_380000031.json"
)


def _x509_entry(der: bytes, index: int = 0) -> LogEntry:
    return LogEntry(
        index=index,
        entry=TimestampedEntry(0, EntryType.X509, der, None, b""),
        leaf_hash=b"",
    )


def _precert_entry(tbs: bytes, index: int = 0) -> LogEntry:
    return LogEntry(
        index=index,
        entry=TimestampedEntry(0, EntryType.PRECERT, tbs, bytes(32), b""),
        leaf_hash=b"",
    )


@pytest.mark.parametrize("index", range(4))
def test_precert_names_equal_sunlights_names_tiles(index: int) -> None:
    """For each Navigli precert, the names read from its TBS equal the log's names tile."""
    tile = parse_data_tile(data(NAVIGLI + data_tile(index).path), data_tile(index))
    lines = data(NAVIGLI + f"tile/names/{index:03d}").decode().splitlines()

    assert len(lines) == len(tile.entries) == 256
    for entry, line in zip(tile.entries, lines, strict=True):
        published = json.loads(line)
        expected = [name.lower() for name in published.get("DNS", [])]
        common_name = published.get("Subject", {}).get("CommonName")
        if common_name:
            expected.append(common_name.lower())
        assert entry_names(entry).dns_names == tuple(dict.fromkeys(expected))


@pytest.mark.parametrize("site", sorted(p.name for p in (CERTS / "real-sites").glob("*.chain.pem")))
def test_certificate_names_equal_cryptographys(site: str) -> None:
    """For each real site's leaf, the names equal the SANs and CN cryptography reads."""
    der = load_certificate_file(CERTS / "real-sites" / site)[0]
    cert = x509.load_der_x509_certificate(der)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    expected = [name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName)]
    expected += [
        str(a.value).lower() for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    ]

    assert entry_names(_x509_entry(der)).dns_names == tuple(dict.fromkeys(expected))


def test_microsoft_has_its_163_names() -> None:
    """microsoft.com's leaf yields its 163 SANs."""
    der = load_certificate_file(CERTS / "real-sites" / "microsoft.com.chain.pem")[0]

    assert len(entry_names(_x509_entry(der)).dns_names) == 163


def test_rfc6962_entries_give_names_for_both_kinds() -> None:
    """Argon's precert and x509 entries and Pilot's first certificate give their names."""
    batch = parse_get_entries(data(ARGON), 380000000, 380000004)
    names = [entry_names(entry).dns_names for entry in batch.entries]
    pilot = parse_get_entries(data("rfc6962/pilot/get-entries_start_0_end_3.json"), 0, 3)

    assert all(names)
    assert entry_names(pilot.entries[0]).dns_names == ("mail.google.com",)


def test_idn_names_come_in_both_forms() -> None:
    """The IDN certificate's SAN (A-label) and UTF-8 CN become one name, shown as Unicode too."""
    der = load_certificate_file(CERTS / "zlint" / "idnCorrectUnicode.pem")[0]
    names = entry_names(_x509_entry(der))

    assert "xn----7sbaabin3cbc7afgb4aiqh6v.xn--80adxhks" in names.dns_names
    assert "адвокатская-контора.москва" in names.unicode_names
    assert len(names.dns_names) == len(set(names.unicode_names))


@pytest.mark.parametrize(
    ("file", "address"),
    [("SANIPv4Address.pem", "192.168.0.1"), ("SANIPv6Address.pem", "2001:db8::2:1")],
)
def test_ip_sans_and_ip_common_names_are_addresses(file: str, address: str) -> None:
    """An IP SAN, and a CN that is the same address, give one address and no DNS name."""
    der = load_certificate_file(DATA / "certs" / file)[0]
    names = entry_names(_x509_entry(der))

    assert names.ip_addresses == (address,)
    assert names.dns_names == ()


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("WWW.Example.COM.", "www.example.com"),
        ("*.Example.com", "*.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("*.BÜCHER.example", "*.xn--bcher-kva.example"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("Example Org Ltd", None),
        ("a..b", None),
        ("a.*.b", None),
        ("evil\x1b[2J.com", None),
        ("-a.com", None),
        ("a" * 64 + ".com", None),
        ("", None),
    ],
)
def test_normalisation(raw: str, normalised: str | None) -> None:
    """Names are lower-cased, lose a trailing dot, become A-labels; non-names are None."""
    assert normalize_name(raw) == normalised


def test_unicode_form_keeps_a_bad_a_label() -> None:
    """An A-label that does not decode is shown as it is."""
    assert to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert to_unicode("xn--zz.example") == "xn--zz.example"


def test_a_malformed_tbs_names_the_entry() -> None:
    """A precert whose TBS is cut short raises MalformedEntryError with its index."""
    tile = parse_data_tile(data(NAVIGLI + "tile/data/000"), data_tile(0))
    tbs = tile.entries[0].entry.certificate

    with pytest.raises(MalformedEntryError, match=r"^entry 7: TBSCertificate: "):
        entry_names(_precert_entry(tbs[:4] + tbs[4:300], 7))


_TBS = parse_data_tile(data(NAVIGLI + "tile/data/000"), data_tile(0)).entries[0].entry.certificate


@given(position=st.integers(0, len(_TBS) - 1), value=st.integers(0, 255))
@example(position=1, value=0x84)
def test_damaged_tbs_gives_names_or_malformed_entry(position: int, value: int) -> None:
    """A real TBS with any byte changed gives names or MalformedEntryError, nothing else."""
    raw = bytearray(_TBS)
    raw[position] = value
    try:
        entry_names(_precert_entry(bytes(raw)))
        entry_dedup_keys(_precert_entry(bytes(raw)))
    except MalformedEntryError:
        pass


@given(tbs=st.binary(max_size=200))
@example(tbs=b"\x30\x03\x02\x01\x01")
def test_random_tbs_gives_names_or_malformed_entry(tbs: bytes) -> None:
    """Random bytes as a TBS give names or MalformedEntryError."""
    try:
        entry_names(_precert_entry(tbs))
        entry_names(_x509_entry(tbs))
    except MalformedEntryError:
        pass


# Dedup.


def test_real_precert_and_final_certificate_share_their_keys() -> None:
    """The CT test CA's precertificate and its final certificate have the same dedup keys."""
    precert = load_certificate_file(CERTS / "appmattus" / "test-embedded-pre-cert.pem")[0]
    final = load_certificate_file(CERTS / "appmattus" / "test-embedded-cert.pem")[0]
    other = load_certificate_file(CERTS / "appmattus" / "ca-cert.pem")[0]

    assert entry_dedup_keys(_x509_entry(precert)) == entry_dedup_keys(_x509_entry(final))
    assert entry_dedup_keys(_x509_entry(final)).tbs != entry_dedup_keys(_x509_entry(other)).tbs


def test_precert_entry_has_the_keys_of_its_precertificate() -> None:
    """An Argon precert entry (TBS without poison) keys the same as its pre_certificate."""
    batch = parse_get_entries(data(ARGON), 380000000, 380000004)
    for entry in batch.entries[:4]:
        assert entry.precertificate is not None
        assert entry_dedup_keys(entry) == entry_dedup_keys(_x509_entry(entry.precertificate))


def _pair(serial: int) -> tuple[bytes, bytes]:
    """A precertificate (poison) and its final certificate (SCT list), as a CA issues them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CT dedup test CA")])
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def build(extension: x509.ExtensionType, critical: bool) -> bytes:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")]))
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=90))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.example.com")]), False)
            .add_extension(extension, critical)
        )
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    poison = x509.PrecertPoison()
    scts = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2"), b"\x04\x02\x00\x00"
    )
    return build(poison, True), build(scts, False)


def test_generated_precert_and_final_share_keys_and_a_renewal_does_not() -> None:
    """Poison and SCT list are ignored by the keys; another serial gives other keys."""
    precert, final = _pair(1000)
    renewal, _ = _pair(1001)
    precert_tbs = certificate_tbs(precert)

    assert entry_dedup_keys(_x509_entry(precert)) == entry_dedup_keys(_x509_entry(final))
    assert entry_dedup_keys(_x509_entry(final)) != entry_dedup_keys(_x509_entry(renewal))
    assert entry_dedup_keys(_precert_entry(precert_tbs)).issuer_serial == (
        entry_dedup_keys(_x509_entry(final)).issuer_serial
    )


def test_leaf_input_base64_round_trip_matches_tile_entry() -> None:
    """The names are the same whether a precert comes from a tile or from get-entries JSON."""
    tile_entry = parse_data_tile(data(NAVIGLI + "tile/data/000"), data_tile(0)).entries[5]
    ts = tile_entry.entry
    leaf = (
        b"\x00\x00"
        + ts.timestamp.to_bytes(8, "big")
        + b"\x00\x01"
        + (ts.issuer_key_hash or b"")
        + len(ts.certificate).to_bytes(3, "big")
        + ts.certificate
        + len(ts.extensions).to_bytes(2, "big")
        + ts.extensions
    )
    precert = tile_entry.precertificate or b""
    extra = len(precert).to_bytes(3, "big") + precert + b"\x00\x00\x00"
    body = json.dumps(
        {
            "entries": [
                {
                    "leaf_input": base64.b64encode(leaf).decode(),
                    "extra_data": base64.b64encode(extra).decode(),
                }
            ]
        }
    ).encode()
    from_json = parse_get_entries(body, 5, 5).entries[0]

    assert from_json.leaf_hash == tile_entry.leaf_hash
    assert entry_names(from_json) == entry_names(tile_entry)


def test_issuer_of_a_precert_is_found_by_its_key_hash() -> None:
    """A precert's issuer is the chain certificate with its issuer_key_hash, wherever it is."""
    batch = parse_get_entries(data(ARGON), 380000000, 380000004)
    precert, final = batch.entries[0], batch.entries[4]
    other = load_certificate_file(CERTS / "appmattus" / "ca-cert.pem")[0]

    assert entry_issuer(precert) == precert.chain[0]
    # As when chain[0] is a Precertificate Signing Certificate: the CA is chain[1].
    assert entry_issuer(precert, (other, precert.chain[0])) == precert.chain[0]
    assert entry_issuer(precert, (other,)) is None
    assert entry_issuer(final) == final.chain[0]


def test_issuer_of_a_static_entry_comes_from_its_fingerprints() -> None:
    """A Navigli entry's issuer is the issuer file its fingerprints name that has its key hash."""
    entry = parse_data_tile(data(NAVIGLI + "tile/data/000"), data_tile(0)).entries[0]
    chain = tuple(data(NAVIGLI + "issuer/" + fp.hex()) for fp in entry.chain_fingerprints)

    assert entry_issuer(entry, chain) == chain[0]
    assert entry_issuer(entry) is None  # no chain given, none in the entry


@given(position=st.integers(0, len(_TBS) - 1), value=st.integers(0, 255))
@example(position=len(_TBS) - 1, value=0)
def test_quick_extension_lookup_agrees_with_the_full_walk(position: int, value: int) -> None:
    """Where every extension parses, find_extension returns the first SAN the full walk sees."""
    raw = bytearray(_TBS)
    raw[position] = value
    tbs = bytes(raw)
    try:
        fields = parse_tbs(tbs)
        extensions = tbs_extensions(tbs, fields)
    except DecodeError:
        return
    expected = next((e.value for e in extensions if e.oid == OID_SUBJECT_ALT_NAME), None)
    assert find_extension(tbs, fields, OID_SUBJECT_ALT_NAME) == expected
