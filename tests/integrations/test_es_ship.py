"""Shipping to Elasticsearch: bulk batches, retries on 429, per-item refusals, deadlines,
template and policy installation; against a loopback stand-in answering with recorded
Elasticsearch bodies (tests/data/elasticsearch/PROVENANCE.md)."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.errors import ShipError
from certvigil.integrations.ecs import documents_for
from certvigil.integrations.es_template import ilm_policy, index_template
from certvigil.integrations.snapshot import snapshots_from_scan_document
from certvigil.output.json_doc import endpoint_json
from certvigil.sinks.elasticsearch import ElasticsearchShipper, ShipOptions
from certvigil.store import open_store
from certvigil.targets.target import Target
from tests.cli.scan_lab import run_cli
from tests.integrations.es_server import elasticsearch_standin
from tests.store.factories import NOW, facts, failed_report, ok_report


def _documents(count: int) -> list[dict]:
    reports = [
        ok_report(
            Target(host=f"h{i}.example.com", port=443),
            (facts(f"h{i}.example.com", not_after_utc=NOW + timedelta(days=i)),),
        )
        for i in range(count)
    ]
    document = {
        "schema_version": 1,
        "endpoints": [json.loads(json.dumps(endpoint_json(r))) for r in reports],
    }
    return documents_for(snapshots_from_scan_document(document))


def _options(url: str, **overrides) -> ShipOptions:
    values = {"url": url, "backoff_s": 0.001, "backoff_max_s": 0.01, "timeout_s": 5.0}
    values.update(overrides)
    return ShipOptions(**values)


def test_all_documents_are_indexed_in_batches_under_their_ids() -> None:
    """25 documents in batches of 10: three requests, each document indexed once by id."""
    documents = _documents(15)  # 15 observations + 15 certificates
    with elasticsearch_standin() as (url, cluster):
        with ElasticsearchShipper(_options(url, max_batch_docs=10)) as shipper:
            result = shipper.ship(documents)

    assert result.indexed == 30
    assert result.rejected == []
    assert [len(r) for r in cluster.bulk_requests] == [10, 10, 10]
    assert len(cluster.documents) == 30
    stored = cluster.documents[("certvigil-observations-2026.06", documents[0]["event"]["id"])]
    assert stored == documents[0]
    assert all(h["content-type"] == "application/x-ndjson" for h in cluster.headers)


def test_batches_respect_the_byte_cap_and_an_oversized_document_is_refused_unsent() -> None:
    """No request exceeds the byte cap; a document bigger than a batch is reported, not sent."""
    documents = _documents(3)
    documents[1]["certvigil"]["padding"] = "x" * 20_000
    with elasticsearch_standin() as (url, cluster):
        with ElasticsearchShipper(_options(url, max_batch_bytes=8_000)) as shipper:
            result = shipper.ship(documents)

    assert [r.doc_id for r in result.rejected] == [documents[1]["event"]["id"]]
    assert result.rejected[0].error_type == "too_large"
    assert result.indexed == len(documents) - 1
    assert all(
        sum(len(json.dumps(a)) + len(json.dumps(s)) for a, s in request) < 8_000
        for request in cluster.bulk_requests
    )


def test_a_whole_request_answered_429_is_retried_until_taken() -> None:
    """Two recorded 429 answers (queue full), then success: everything indexed, two retries."""
    documents = _documents(2)
    with elasticsearch_standin() as (url, cluster):
        cluster.whole_answers = [429, 429]
        with ElasticsearchShipper(_options(url)) as shipper:
            result = shipper.ship(documents)

    assert result.indexed == 4
    assert result.retried == 2
    assert len(cluster.bulk_requests) == 3


def test_a_refused_item_is_reported_with_its_id_and_the_others_are_indexed() -> None:
    """The recorded parsing error for one document names it; a 429 item is sent again alone."""
    documents = _documents(3)
    refused, busy = documents[0]["event"]["id"], documents[1]["event"]["id"]
    with elasticsearch_standin() as (url, cluster):
        cluster.refuse_ids = {refused}
        cluster.busy_ids = {busy}
        with ElasticsearchShipper(_options(url)) as shipper:
            result = shipper.ship(documents)

    assert result.indexed == len(documents) - 1
    (item,) = result.rejected
    assert item.doc_id == refused
    assert item.status == 400
    assert item.error_type == "document_parsing_exception"
    assert "failed to parse field [longField]" in item.reason
    assert 'For input string: "hello"' in item.reason
    assert [[a["index"]["_id"] for a, _ in r] for r in cluster.bulk_requests][1] == [busy]
    assert (documents[1]["event"]["id"]) in {doc_id for _, doc_id in cluster.documents}


def test_a_request_refused_as_a_whole_stops_with_the_reason() -> None:
    """A 400 answer to the whole request is not retried: the error names the cause."""
    with elasticsearch_standin() as (url, cluster):
        cluster.whole_answers = [400]
        with ElasticsearchShipper(_options(url)) as shipper, pytest.raises(ShipError) as caught:
            shipper.ship(_documents(1))

    assert "HTTP 400: document_parsing_exception" in str(caught.value)
    assert len(cluster.bulk_requests) == 1


def test_retries_run_out_on_a_cluster_that_stays_busy() -> None:
    """429 forever: the run stops after the retries, saying what it had indexed."""
    with elasticsearch_standin() as (url, cluster):
        cluster.whole_answers = [429] * 10
        with (
            ElasticsearchShipper(_options(url, retries=2)) as shipper,
            pytest.raises(ShipError, match="HTTP 429: es_rejected_execution_exception"),
        ):
            shipper.ship(_documents(1))

    assert len(cluster.bulk_requests) == 3


def test_a_server_that_never_stops_answering_is_cut_off_at_the_time_out() -> None:
    """An answer that never ends holds the run no longer than its time-out allows."""
    with elasticsearch_standin() as (url, cluster):
        cluster.endless = True
        started = time.monotonic()
        with (
            ElasticsearchShipper(_options(url, timeout_s=0.5, retries=0)) as shipper,
            pytest.raises(ShipError),
        ):
            shipper.ship(_documents(1))
        elapsed = time.monotonic() - started

    assert elapsed < 10  # generous bound: without the cut-off this never returns


def test_an_answer_over_the_size_cap_is_refused() -> None:
    """An answer larger than max_response_bytes ends the run rather than filling memory."""
    with elasticsearch_standin() as (url, cluster):
        cluster.endless = True
        with (
            ElasticsearchShipper(
                _options(url, timeout_s=30, max_response_bytes=50_000, retries=0)
            ) as shipper,
            pytest.raises(ShipError, match="answer longer than 50000 bytes"),
        ):
            shipper.ship(_documents(1))


def test_install_puts_the_policy_then_the_template_with_the_api_key() -> None:
    """The ILM policy and the index template go to their APIs, authenticated by the key."""
    with elasticsearch_standin() as (url, cluster):
        with ElasticsearchShipper(_options(url, api_key="aWQ6a2V5")) as shipper:
            shipper.install(policy=ilm_policy(), template=index_template())

    assert list(cluster.puts) == ["/_ilm/policy/certvigil", "/_index_template/certvigil"]
    assert cluster.puts["/_index_template/certvigil"] == index_template()
    assert all(h["authorization"] == "ApiKey aWQ6a2V5" for h in cluster.headers)


def test_nothing_listening_is_a_clear_error() -> None:
    """A closed port: the retries run out and the error names the cluster."""
    from certvigil.demo.servers import closed_port

    with closed_port() as address:
        url = f"http://127.0.0.1:{address.port}"
        with (
            ElasticsearchShipper(_options(url, retries=1)) as shipper,
            pytest.raises(ShipError, match=r"127\.0\.0\.1"),
        ):
            shipper.ship(_documents(1))


# The command line --------------------------------------------------------------------


def _store_with_observations(tmp_path: Path) -> str:
    path = tmp_path / "certvigil.db"
    now = datetime.now(UTC)
    with open_store(f"sqlite:///{path}") as store:
        store.record_report(
            ok_report(
                Target(host="www.example.com", port=443),
                (facts("www.example.com", not_after_utc=now + timedelta(days=30)),),
                at=now,
            )
        )
        store.record_report(failed_report(Target(host="down.example.com", port=443), at=now))
    return str(path)


def test_ship_command_reports_a_refused_document_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`ship elasticsearch` installs the template, indexes two observations and one
    certificate, names the refused one on stderr and exits 1."""
    db = _store_with_observations(tmp_path)
    with elasticsearch_standin() as (url, cluster):
        cluster.refuse_ids = {"obs-2"}
        result = run_cli(
            capsys, "ship", "elasticsearch", url, "--db", db, "--since", "1h",
            "--install-template", "--user", "elastic",
        )  # fmt: skip

    assert result.code == 1, result.stderr
    assert "rejected: obs-2 (certvigil-observations-" in result.stderr
    assert "document_parsing_exception" in result.stderr
    assert "2 indexed, 1 rejected" in result.stderr
    assert {doc_id for _, doc_id in cluster.documents} == {
        "obs-1",
        next(doc_id for _, doc_id in cluster.documents if doc_id.startswith("cert-")),
    }
    assert "/_index_template/certvigil" in cluster.puts
    assert cluster.headers[0]["authorization"] == "Basic " + base64.b64encode(b"elastic:").decode()


def test_ship_command_refuses_credentials_in_the_url(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A URL with a password is a usage error (it would end up in logs and ps)."""
    result = run_cli(capsys, "ship", "elasticsearch", "http://u:p@127.0.0.1:9", "--db", "x")
    assert result.code == 64
    assert "credentials" in result.stderr


def test_export_command_writes_bulk_ndjson(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`export ecs` writes action and document lines the stand-in cluster takes as they are."""
    db = _store_with_observations(tmp_path)
    out = tmp_path / "bulk.ndjson"
    result = run_cli(capsys, "export", "ecs", "--db", db, "--since", "1h", "-o", str(out))
    assert result.code == 0, result.stderr
    assert "3 documents written" in result.stderr

    lines = out.read_text().splitlines()
    assert len(lines) == 6
    import httpx

    with elasticsearch_standin() as (url, cluster):
        answer = httpx.post(
            f"{url}/_bulk",
            content=out.read_bytes(),
            headers={"Content-Type": "application/x-ndjson"},
        ).json()
    assert answer["errors"] is False
    assert len(cluster.documents) == 3


def test_ship_over_https_verifies_the_cluster_with_the_ca_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Over TLS: with --ca-file naming the cluster's root the documents go in; without
    it the certificate is refused and nothing is sent (exit 3, one line)."""
    from certvigil.demo.pki import ThrowawayPki
    from certvigil.demo.servers import ServedChain, server_context

    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    context = server_context(ServedChain(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem))
    ca = tmp_path / "root.pem"
    ca.write_bytes(pki.root.pem)
    db = _store_with_observations(tmp_path)
    with elasticsearch_standin(tls=context) as (url, cluster):
        trusted = run_cli(capsys, "ship", "elasticsearch", url, "--db", db, "--ca-file", str(ca))
        untrusted = run_cli(capsys, "ship", "elasticsearch", url, "--db", db, "--retries", "0")

    assert trusted.code == 0, trusted.stderr
    assert "3 indexed, 0 rejected" in trusted.stderr
    assert untrusted.code == 3
    assert untrusted.stderr.count("\n") == 1
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr or "certificate" in untrusted.stderr
    assert len(cluster.bulk_requests) == 1
