"""The versioned JSON API under ``/api/v1``: reports, inventory, alerts, agents, scans."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from certvigil import __version__
from certvigil.analysis.changes import Change
from certvigil.analysis.model import Severity
from certvigil.config.model import TargetEntry
from certvigil.errors import UsageError
from certvigil.output.json_doc import certificate_json
from certvigil.server.api.json_body import FastJsonRoute
from certvigil.server.app import ServerState, server_state, state_dependency
from certvigil.server.auth import ADMINS, AGENTS_ONLY, READERS, SCOPES_EXTENSION, require
from certvigil.server.errors import ApiError
from certvigil.server.events import EVENT_ACKNOWLEDGED, EVENT_RESOLVED, record_alert_event
from certvigil.server.ingest import MAX_ITEMS, AgentInfo, BatchOutcome
from certvigil.server.ingest_process import BatchRequest
from certvigil.server.keys import Principal, Scope
from certvigil.server.scans import scan_on_request
from certvigil.server.shapes import (
    agent_json,
    alert_json,
    decode_cursor,
    deployment_json,
    encode_cursor,
    endpoint_json,
    finding_json,
    inventory_json,
    iso,
    observation_json,
    page,
)
from certvigil.server.trust import TrustDocument
from certvigil.store import AlertState
from certvigil.store import queries as q
from certvigil.store import server_queries as sq

router = APIRouter(route_class=FastJsonRoute)

Sha256 = Annotated[str, Path(pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256, hex")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
Cursor = Annotated[
    str | None, Query(max_length=400, description="next_cursor of the previous page")
]


def _scopes(*scopes: Scope) -> dict[str, Any]:
    return {SCOPES_EXTENSION: sorted(s.value for s in scopes)}


Reader = Annotated[Principal, Depends(require(*READERS))]
Reporter = Annotated[Principal, Depends(require(*AGENTS_ONLY))]
Admin = Annotated[Principal, Depends(require(*ADMINS))]
State = Annotated[ServerState, Depends(state_dependency)]


def host_glob(host: str | None) -> str | None:
    """``host=internal`` matches names containing it; a value with ``*`` or ``?`` is a glob."""
    if host is None or host == "":
        return None
    return host if any(c in host for c in "*?") else f"*{host}*"


def id_cursor(cursor: str | None) -> int | None:
    """The row id inside a list's cursor, ``None`` for the first page.

    Raises:
        ApiError: 400 for a cursor this list did not make.
    """
    value = decode_cursor(cursor)
    if value is None:
        return None
    try:
        return sq.cursor_id(value)
    except ValueError as exc:
        raise ApiError(400, "bad_cursor", str(exc)) from None


# Reports ----------------------------------------------------------------------------


class AgentModel(BaseModel):
    """The agent sending a batch."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    version: str = Field(default="unknown", max_length=64)
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default_factory=list, max_length=32
    )
    interval_s: int = Field(default=3600, ge=1, le=10_000_000)
    targets: int = Field(default=0, ge=0, le=100_000_000)
    backlog: int = Field(default=0, ge=0, le=100_000_000)


class ReportBatch(BaseModel):
    """A batch of observations from an agent."""

    model_config = ConfigDict(extra="forbid")

    report_id: str = Field(
        min_length=8,
        max_length=100,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The agent's id for the batch: a retry with the same id is stored once",
    )
    agent: AgentModel
    trust: TrustDocument = Field(default_factory=TrustDocument)
    thresholds: list[Annotated[str, Field(max_length=20)]] | None = Field(
        default=None, max_length=20, description="The agent's alert thresholds (30d, 7d...)"
    )
    items: list[Any] = Field(
        max_length=MAX_ITEMS, description="Observations (certvigil.handshake/1)"
    )


def outcome_json(outcome: BatchOutcome) -> dict[str, Any]:
    """The answer to a batch."""
    return {
        "report_id": outcome.report_id,
        "accepted": outcome.accepted,
        "rejected": list(outcome.rejected),
        "duplicate": outcome.duplicate,
    }


async def ingest(state: ServerState, principal: Principal, batch: ReportBatch) -> BatchOutcome:
    """Has a batch judged and stored by the ingest process (shared with the SSL Scout
    route), sent through the server's one ingest thread so batches keep their order."""
    # An agent key reports as the agent of its own name: one agent cannot pose as another.
    name = principal.name if principal.scope is Scope.AGENT else batch.agent.name
    request = BatchRequest(
        report_id=f"{name}/{batch.report_id}",
        agent=AgentInfo(
            name=name,
            version=batch.agent.version,
            tags=tuple(batch.agent.tags),
            interval_s=batch.agent.interval_s,
            targets=batch.agent.targets,
            backlog=batch.agent.backlog,
        ),
        api_key_id=principal.key_id,
        trust=batch.trust,
        thresholds=tuple(batch.thresholds) if batch.thresholds else None,
        items=batch.items,
        now=state.clock(),
    )
    # Sent in turn on the ingest thread (pickling a batch takes a millisecond or so),
    # answered when the process has stored it; the next batch is sent meanwhile.
    sent = await state.ingest.run(state.writer.submit, request)
    outcome = await asyncio.wrap_future(sent)
    if outcome.alert_events:
        state.hub.wake()
    return BatchOutcome(
        report_id=batch.report_id,
        accepted=outcome.accepted,
        rejected=outcome.rejected,
        duplicate=outcome.duplicate,
    )


@router.post(
    "/reports",
    summary="Send a batch of observations (agents)",
    openapi_extra=_scopes(*AGENTS_ONLY),
    tags=["agents"],
)
async def post_reports(batch: ReportBatch, principal: Reporter, state: State) -> dict[str, Any]:
    """Stores a batch once per ``report_id``; bad items are listed with index and reason."""
    return outcome_json(await ingest(state, principal, batch))


@router.get(
    "/agents/me/targets",
    summary="Targets the server assigns to the calling agent",
    openapi_extra=_scopes(*AGENTS_ONLY),
    tags=["agents"],
)
def my_targets(
    principal: Reporter,
    state: State,
    tag: Annotated[list[str] | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    """The targets assigned to this agent's name or to one of the tags it names."""
    tags = set(tag or ())
    entries: list[dict[str, Any]] = []
    for assignment in state.loaded.config.serve.assignments:
        if assignment.agent == principal.name or (assignment.tag and assignment.tag in tags):
            entries += [
                t.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)
                | {"host": t.host}
                for t in assignment.targets
            ]
    return {"agent": principal.name, "targets": entries}


# Certificates -----------------------------------------------------------------------


@router.get(
    "/certificates",
    summary="Deployed certificates, filtered, sorted, paged",
    openapi_extra=_scopes(*READERS),
    tags=["inventory"],
)
async def list_certificates(
    _principal: Reader,
    state: State,
    expiring_within: Annotated[float | None, Query(ge=0, le=36500, description="Days")] = None,
    host: Annotated[str | None, Query(max_length=255)] = None,
    issuer: Annotated[str | None, Query(max_length=255)] = None,
    grade_below: Annotated[
        Literal["A+", "A", "A-", "B", "C", "D", "E", "F", "T"] | None,
        Query(description="Only endpoints whose latest grade is worse (from graded scans)"),
    ] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    sort: Annotated[
        Literal[
            "not_after", "-not_after", "host", "-host", "issuer", "-issuer", "subject", "-subject"
        ],
        Query(),
    ] = "not_after",
    limit: Limit = 100,
    cursor: Cursor = None,
) -> Response:
    """Leaf certificates as currently deployed (one row per endpoint)."""
    key = ("certificates", expiring_within, host, issuer, tag, grade_below, sort, limit, cursor)

    def read_version() -> int:
        with state.store.read() as connection:
            return sq.inventory_version(connection)

    after = decode_cursor(cursor)

    def make() -> bytes:
        now = state.clock()
        try:
            with state.store.read() as connection:
                rows, next_key = sq.certificate_page(
                    connection,
                    now=now,
                    expiring_within_days=expiring_within,
                    host_glob=host_glob(host),
                    issuer=issuer or None,
                    tag=tag or None,
                    grade_below=grade_below,
                    sort=sort,
                    after=after,
                    limit=limit,
                )
        except ValueError as exc:
            raise ApiError(400, "bad_cursor", str(exc)) from None
        answer = page(
            [inventory_json(r, now=now) for r in rows],
            encode_cursor(next_key) if next_key is not None else None,
        )
        return json.dumps(answer, separators=(",", ":")).encode()

    def answer() -> Any:
        return state.pages.get_or_make(key, state.pages.version(read_version), make)

    # A repeated question is answered here, on the event loop; the database is read in
    # a worker thread (one hop per request rather than one per dependency and route).
    known = state.pages.known_version()
    body = state.pages.get(key, known) if known is not None else None
    if body is None:
        body = await run_in_threadpool(answer)
    return Response(content=body, media_type="application/json")


@router.get(
    "/certificates/{sha256}",
    summary="One certificate: facts, chain, findings, where deployed now and before",
    openapi_extra=_scopes(*READERS),
    tags=["inventory"],
)
def get_certificate(sha256: Sha256, _principal: Reader, state: State) -> dict[str, Any]:
    """Everything known about a certificate."""
    key = sha256.lower()
    now = state.clock()
    with state.store.read() as connection:
        facts = q.get_certificate(connection, key)
        if facts is None:
            raise ApiError(404, "not_found", f"certificate {key}: not in the inventory")
        deployments = q.certificate_deployments(connection, key)
        latest = q.latest_observations(connection, [d.endpoint_id for d in deployments])
    findings: dict[str, dict[str, Any]] = {}
    chain: list[str] = []
    for deployment in deployments:
        observation = latest.get(deployment.endpoint_id)
        if observation is None or not deployment.is_current:
            continue
        if not chain and key in observation.chain_sha256:
            chain = list(observation.chain_sha256)
        for finding in observation.findings:
            findings.setdefault(f"{finding.code}:{finding.message}", finding_json(finding))
    return {
        "sha256": key,
        "facts": certificate_json(facts, index=0, now=now),
        "chain_sha256": chain,
        "findings": list(findings.values()),
        "deployed_now": [deployment_json(d) for d in deployments if d.is_current],
        "deployed_before": [deployment_json(d) for d in deployments if not d.is_current],
    }


# Endpoints and changes --------------------------------------------------------------


@router.get(
    "/endpoints",
    summary="Known endpoints, paged",
    openapi_extra=_scopes(*READERS),
    tags=["inventory"],
)
def list_endpoints(
    _principal: Reader,
    state: State,
    host: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Endpoints by id."""
    after = id_cursor(cursor)
    with state.store.read() as connection:
        found = sq.endpoints_page(
            connection,
            host_glob=host_glob(host),
            tag=tag or None,
            after_id=after,
            limit=limit + 1,
        )
    more = len(found) > limit
    chunk = found[:limit]
    return page(
        [endpoint_json(e) for e in chunk], encode_cursor(chunk[-1].id) if more and chunk else None
    )


@router.get(
    "/endpoints/{endpoint_id}/history",
    summary="An endpoint's observations, newest first, paged",
    openapi_extra=_scopes(*READERS),
    tags=["inventory"],
)
def endpoint_history(
    endpoint_id: Annotated[int, Path(ge=1, le=2**62)],
    _principal: Reader,
    state: State,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """What each scan of the endpoint saw, with what changed."""
    before = id_cursor(cursor)
    with state.store.read() as connection:
        if not sq.endpoint_exists(connection, endpoint_id):
            raise ApiError(404, "not_found", f"endpoint {endpoint_id}: not in the inventory")
        history = q.endpoint_history(connection, endpoint_id, limit=limit + 1, before_id=before)
        changes = q.endpoint_changes(connection, endpoint_id)
    chunk = history[:limit]
    more = len(history) > limit
    return {
        "endpoint_id": endpoint_id,
        "items": [observation_json(o) for o in chunk],
        "changes": [_change_json(c) for c in changes],
        "next_cursor": encode_cursor(chunk[-1].id) if more and chunk else None,
    }


def _change_json(change: Change) -> dict[str, Any]:
    return {
        "at": iso(change.observed_at_utc),
        "kind": change.kind.value,
        "before": change.before,
        "after": change.after,
        "message": change.message,
    }


@router.get(
    "/changes",
    summary="What changed anywhere since a time",
    openapi_extra=_scopes(*READERS),
    tags=["inventory"],
)
def list_changes(
    _principal: Reader,
    state: State,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO 8601 time, or hours like 24h")
    ] = None,
    host: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Changes per endpoint, paged by endpoint id."""
    since_utc = _since(since, state)
    after = id_cursor(cursor)
    with state.store.read() as connection:
        chunk, more = sq.changes_page(
            connection,
            since_utc,
            host_glob=host_glob(host),
            tag=tag or None,
            after_id=after,
            limit=limit,
        )
    return {
        "since": iso(since_utc),
        "items": [
            {"endpoint": endpoint_json(e), "changes": [_change_json(c) for c in changes]}
            for e, changes in chunk
        ],
        "next_cursor": encode_cursor(chunk[-1][0].id) if more and chunk else None,
    }


def _since(text: str | None, state: ServerState) -> datetime:
    now = state.clock()
    if text is None or text == "":
        return now - timedelta(days=1)
    for unit, seconds in (("h", 3600), ("d", 86400), ("m", 60)):
        if text.endswith(unit) and text[:-1].isdigit() and len(text) < 10:
            return now - timedelta(seconds=int(text[:-1]) * seconds)
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_time", f"since: {text!r} is not ISO 8601 nor like 24h") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


# Alerts -----------------------------------------------------------------------------

AlertStateQuery = Literal["open", "acknowledged", "resolved", "active"]


def alert_page(
    state: ServerState,
    *,
    unread: bool | None,
    alert_state: str | None,
    severity: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], int | None]:
    """Alerts for a list request and the next page's cursor value."""
    states: set[AlertState] | None = None
    if alert_state == "active":
        states = {AlertState.OPEN, AlertState.ACKNOWLEDGED}
    elif alert_state is not None:
        states = {AlertState(alert_state)}
    if unread:
        # Unread: open and nobody has acknowledged it.
        states = {AlertState.OPEN} if states is None else states & {AlertState.OPEN}
    elif unread is False:
        read = {AlertState.ACKNOWLEDGED, AlertState.RESOLVED}
        states = read if states is None else states & read
    before = id_cursor(cursor)
    if states is not None and not states:
        return [], None
    with state.store.read() as connection:
        found = sq.alerts_page(
            connection,
            states=states,
            severities={Severity(severity)} if severity else None,
            before_id=before,
            limit=limit + 1,
        )
    more = len(found) > limit
    chunk = list(found[:limit])
    return chunk, (chunk[-1].id if more and chunk else None)


@router.get(
    "/alerts",
    summary="Alerts, newest first, paged",
    openapi_extra=_scopes(*READERS),
    tags=["alerts"],
)
def list_alerts(
    _principal: Reader,
    state: State,
    unread: bool | None = None,
    alert_state: Annotated[AlertStateQuery | None, Query(alias="state")] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """``unread=true`` is open and not acknowledged."""
    chunk, next_id = alert_page(
        state,
        unread=unread,
        alert_state=alert_state,
        severity=severity,
        limit=limit,
        cursor=cursor,
    )
    return page([alert_json(a) for a in chunk], encode_cursor(next_id) if next_id else None)


AlertId = Annotated[int, Path(ge=1, le=2**62)]


class AckBody(BaseModel):
    """An optional note."""

    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=2000)


def change_alert(
    state: ServerState, alert_id: int, principal: Principal, *, resolve: bool, note: str | None
) -> dict[str, Any]:
    """Acknowledges or resolves an alert and logs the stream event in one transaction."""
    now = state.clock()
    engine = state.engine()
    try:
        with state.store.write() as connection:
            if resolve:
                alert = engine.resolve_in(
                    connection, alert_id, now=now, by=principal.name, note=note
                )
            else:
                alert = engine.acknowledge_in(
                    connection, alert_id, by=principal.name, now=now, note=note
                )
            record_alert_event(
                connection, alert_id, EVENT_RESOLVED if resolve else EVENT_ACKNOWLEDGED, now=now
            )
    except UsageError as exc:
        status = 404 if "no such alert" in str(exc) else 409
        raise ApiError(status, "not_found" if status == 404 else "conflict", str(exc)) from None
    state.hub.wake()
    return alert_json(alert)


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an open alert",
    openapi_extra=_scopes(*ADMINS),
    tags=["alerts"],
)
def acknowledge(
    alert_id: AlertId, principal: Admin, state: State, body: AckBody | None = None
) -> dict[str, Any]:
    """Someone is on it; 409 when it is not open."""
    return change_alert(state, alert_id, principal, resolve=False, note=body.note if body else None)


@router.post(
    "/alerts/{alert_id}/resolve",
    summary="Resolve an active alert",
    openapi_extra=_scopes(*ADMINS),
    tags=["alerts"],
)
def resolve(
    alert_id: AlertId, principal: Admin, state: State, body: AckBody | None = None
) -> dict[str, Any]:
    """Closes it; a condition that still holds opens a new alert at the next report."""
    return change_alert(state, alert_id, principal, resolve=True, note=body.note if body else None)


# Agents -----------------------------------------------------------------------------


@router.get(
    "/agents",
    summary="Agents: version, last contact, targets, backlog",
    openapi_extra=_scopes(*READERS),
    tags=["agents"],
)
def list_agents(
    _principal: Reader, state: State, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    """Agents by name."""
    after = decode_cursor(cursor)
    if after is not None:
        try:
            after = sq.cursor_text(after)
        except ValueError as exc:
            raise ApiError(400, "bad_cursor", str(exc)) from None
    now = state.clock()
    with state.store.read() as connection:
        found = sq.list_agents(connection, after_name=after, limit=limit + 1)
    more = len(found) > limit
    chunk = found[:limit]
    return page(
        [agent_json(a, now=now, silence_intervals=state.silence_intervals) for a in chunk],
        encode_cursor(chunk[-1].name) if more and chunk else None,
    )


# Scans ------------------------------------------------------------------------------


class ScanRequest(BaseModel):
    """Endpoints to scan now."""

    model_config = ConfigDict(extra="forbid")
    targets: list[TargetEntry] = Field(min_length=1, max_length=64)


@router.post(
    "/scans",
    summary="Scan now (only targets inside serve.scan_allow)",
    openapi_extra=_scopes(*ADMINS),
    tags=["scans"],
)
async def post_scan(body: ScanRequest, principal: Admin, request: Request) -> dict[str, Any]:
    """Probes the targets, records and judges them; 403 for anything outside the allow-list."""
    state = server_state(request)
    return await scan_on_request(state, body.targets, by=principal.name)


@router.get(
    "/status",
    summary="Server version and the caller's scope",
    openapi_extra=_scopes(Scope.AGENT, Scope.READ, Scope.ADMIN),
    tags=["server"],
)
def status(
    principal: Annotated[Principal, Depends(require(Scope.AGENT, Scope.READ, Scope.ADMIN))],
    state: State,
) -> dict[str, Any]:
    """Who you are to this server, and which version it runs."""
    return {
        "version": __version__,
        "principal": principal.name,
        "scope": principal.scope.value,
        "database": state.store.dialect_name,
        "events": state.hub.last_id,
    }
