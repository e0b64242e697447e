"""Reading and writing what the web dashboard needs: users, sessions, login throttling,
the overview's aggregates and the paged inventory.

Every function takes a Connection (from ``Store.read`` or ``Store.write``) and never
reads the clock: callers pass ``now``. Values from outside (search text, sort keys) are
bound parameters or chosen from fixed tables, never SQL text.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    and_,
    case,
    cast,
    delete,
    distinct,
    func,
    inspect,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from certvigil.store.dashboard_models import DASHBOARD_SESSIONS, DASHBOARD_USERS, LOGIN_THROTTLE
from certvigil.store.models import (
    ALERTS,
    CERTIFICATES,
    DEPLOYMENTS,
    ENDPOINT_TAGS,
    ENDPOINTS,
    sqlite_utc_text,
)
from certvigil.store.queries import _endpoint_record as endpoint_record
from certvigil.store.queries import tags_for, target_from_columns
from certvigil.store.records import EndpointRecord
from certvigil.targets.target import Target

TIMELINE_WEEKS = 52
"""How far ahead the overview's expiry timeline looks, in weeks."""

MAX_PAGE_SIZE = 500
"""The most inventory rows one page may ask for."""

_SEARCH_MAX_CHARS = 200


# Users ---------------------------------------------------------------------------------


class UserRole(enum.StrEnum):
    """What a dashboard user may do, as stored in ``dashboard_users.role``."""

    VIEWER = "viewer"
    """Reads every page; cannot acknowledge or resolve alerts."""
    ADMIN = "admin"
    """Reads, and acknowledges and resolves alerts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DashboardUserRecord:
    """A dashboard user.

    Attributes:
        id: Row id.
        name: The login name.
        password_hash: The argon2 hash (PHC string).
        created_at_utc: When the user was added.
        role: What the user may do.
    """

    id: int
    name: str
    password_hash: str
    created_at_utc: datetime
    role: UserRole = UserRole.ADMIN


class UserExistsError(ValueError):
    """A user of that name already exists."""


def add_user(
    connection: Connection,
    *,
    name: str,
    password_hash: str,
    now: datetime,
    role: UserRole = UserRole.ADMIN,
) -> int:
    """Adds a user and returns its id.

    Raises:
        UserExistsError: The name is taken.
    """
    try:
        with connection.begin_nested():
            result = connection.execute(
                DASHBOARD_USERS.insert().values(
                    name=name, password_hash=password_hash, created_at_utc=now, role=role.value
                )
            )
    except IntegrityError as exc:
        raise UserExistsError(f"user {name!r} already exists") from exc
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database returned no id for the new user")
    return int(key[0])


def set_password_hash(connection: Connection, *, name: str, password_hash: str) -> bool:
    """Replaces a user's hash (a rehash with newer parameters); ``False`` if no such user."""
    u = DASHBOARD_USERS.c
    result = connection.execute(
        update(DASHBOARD_USERS).where(u.name == name).values(password_hash=password_hash)
    )
    return result.rowcount > 0


def get_user(connection: Connection, name: str) -> DashboardUserRecord | None:
    """The user of that name, ``None`` if none."""
    row = connection.execute(select(DASHBOARD_USERS).where(DASHBOARD_USERS.c.name == name)).first()
    return None if row is None else _user(row)


def list_users(connection: Connection) -> tuple[DashboardUserRecord, ...]:
    """Every user, by name."""
    rows = connection.execute(select(DASHBOARD_USERS).order_by(DASHBOARD_USERS.c.name))
    return tuple(_user(r) for r in rows)


def remove_user(connection: Connection, name: str) -> bool:
    """Removes a user and ends their sessions; ``False`` if there was no such user."""
    user = get_user(connection, name)
    if user is None:
        return False
    connection.execute(delete(DASHBOARD_SESSIONS).where(DASHBOARD_SESSIONS.c.user_id == user.id))
    connection.execute(delete(DASHBOARD_USERS).where(DASHBOARD_USERS.c.id == user.id))
    return True


def _user(row: Any) -> DashboardUserRecord:
    return DashboardUserRecord(
        id=row.id,
        name=row.name,
        password_hash=row.password_hash,
        created_at_utc=row.created_at_utc,
        role=_role(row.role),
    )


def _role(stored: str) -> UserRole:
    # A value this version does not know grants the least: reading.
    try:
        return UserRole(stored)
    except ValueError:
        return UserRole.VIEWER


# Sessions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionRecord:
    """A logged-in browser.

    Attributes:
        user_name: Who is logged in.
        csrf_token: The token every form of this session must carry.
        expires_at_utc: When the session ends.
        role: What the user may do (read from the user at each request, so a change
            takes effect at once).
    """

    user_name: str
    csrf_token: str
    expires_at_utc: datetime
    role: UserRole = UserRole.ADMIN

    @property
    def may_change_alerts(self) -> bool:
        """Whether this user may acknowledge and resolve alerts."""
        return self.role is UserRole.ADMIN


def create_session(
    connection: Connection,
    *,
    user_id: int,
    token_sha256: str,
    csrf_token: str,
    now: datetime,
    lifetime: timedelta,
) -> None:
    """Records a new session; expired sessions are removed on the way."""
    s = DASHBOARD_SESSIONS.c
    connection.execute(delete(DASHBOARD_SESSIONS).where(s.expires_at_utc <= now))
    connection.execute(
        DASHBOARD_SESSIONS.insert().values(
            token_sha256=token_sha256,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at_utc=now,
            expires_at_utc=now + lifetime,
        )
    )


def find_session(
    connection: Connection, token_sha256: str, *, now: datetime
) -> SessionRecord | None:
    """The live session with that token hash, ``None`` if unknown or expired."""
    s, u = DASHBOARD_SESSIONS.c, DASHBOARD_USERS.c
    row = connection.execute(
        select(u.name, u.role, s.csrf_token, s.expires_at_utc)
        .select_from(DASHBOARD_SESSIONS.join(DASHBOARD_USERS, u.id == s.user_id))
        .where(s.token_sha256 == token_sha256, s.expires_at_utc > now)
    ).first()
    if row is None:
        return None
    return SessionRecord(
        user_name=row.name,
        csrf_token=row.csrf_token,
        expires_at_utc=row.expires_at_utc,
        role=_role(row.role),
    )


def end_session(connection: Connection, token_sha256: str) -> None:
    """Forgets a session (logout)."""
    connection.execute(
        delete(DASHBOARD_SESSIONS).where(DASHBOARD_SESSIONS.c.token_sha256 == token_sha256)
    )


# Login throttling ----------------------------------------------------------------------


def login_blocked(
    connection: Connection, limits: Mapping[str, int], *, now: datetime, window: timedelta
) -> bool:
    """Whether any key of ``limits`` reached its limit of failed logins in the current window.

    Args:
        connection: Any connection.
        limits: Failures allowed per key (``user:NAME``, ``addr:ADDRESS``).
        now: The current time.
        window: How long failures are counted from the first of a window.
    """
    t = LOGIN_THROTTLE.c
    rows = connection.execute(
        select(t.key, t.failures).where(t.key.in_(list(limits)), t.window_start_utc > now - window)
    ).all()
    return any(failures >= limits[key] for key, failures in rows)


def record_login_failure(
    connection: Connection, keys: Iterable[str], *, now: datetime, window: timedelta
) -> None:
    """Counts one failed login against each key, starting a new window where the last lapsed."""
    t = LOGIN_THROTTLE.c
    for key in keys:
        row = connection.execute(select(t.failures, t.window_start_utc).where(t.key == key)).first()
        if row is None:
            connection.execute(
                LOGIN_THROTTLE.insert().values(key=key, failures=1, window_start_utc=now)
            )
        elif row.window_start_utc <= now - window:
            connection.execute(
                update(LOGIN_THROTTLE).where(t.key == key).values(failures=1, window_start_utc=now)
            )
        else:
            connection.execute(
                update(LOGIN_THROTTLE).where(t.key == key).values(failures=t.failures + 1)
            )


def clear_login_failures(connection: Connection, keys: Iterable[str]) -> None:
    """Forgets the failures of ``keys`` (after a successful login)."""
    connection.execute(delete(LOGIN_THROTTLE).where(LOGIN_THROTTLE.c.key.in_(list(keys))))


# Overview ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Overview:
    """The overview page's numbers.

    Attributes:
        endpoints_by_status: Endpoints per last status (``ok``, ``failed``...).
        certificates: Distinct leaf certificates currently deployed.
        expired: Of those, how many have expired.
        expiring_by_week: Leaf certificates expiring in week ``i`` from ``now`` (0..51).
        later: Leaf certificates expiring after the timeline.
        issuers: (issuer name, leaf certificates) for the most common issuers.
        grades: (grade, endpoints) when grades are recorded, else ``None``.
        open_alerts_by_severity: Active (open or acknowledged) alerts per severity.
    """

    endpoints_by_status: tuple[tuple[str, int], ...]
    certificates: int
    expired: int
    expiring_by_week: tuple[int, ...]
    later: int
    issuers: tuple[tuple[str, int], ...]
    grades: tuple[tuple[str, int], ...] | None
    open_alerts_by_severity: tuple[tuple[str, int], ...]


def _current_leaves() -> Any:
    d = DEPLOYMENTS.c
    return and_(d.is_current.is_(True), d.chain_position == 0)


def overview(
    connection: Connection, *, now: datetime, top_issuers: int = 10, with_alerts: bool = True
) -> Overview:
    """The overview's aggregates, computed in the database (a few grouped scans).

    With ``with_alerts=False`` the alert counts are left empty: everything else changes
    only when an observation is recorded, so a caller may keep it for a while and add
    :func:`open_alerts_by_severity` (which an acknowledgement changes) fresh.
    """
    e, d, c = ENDPOINTS.c, DEPLOYMENTS.c, CERTIFICATES.c
    statuses = connection.execute(
        select(e.last_status, func.count()).group_by(e.last_status).order_by(e.last_status)
    ).all()
    # One pass over the current leaves (the covering expiry index): each certificate
    # falls in one bucket, -1 for expired, TIMELINE_WEEKS for later, so counting
    # distinct certificates per bucket counts each once, however many endpoints
    # serve it.
    horizon = now + timedelta(weeks=TIMELINE_WEEKS)
    bucket = case(
        (d.not_after_utc < now, -1),
        (d.not_after_utc >= horizon, TIMELINE_WEEKS),
        else_=_week_index(connection, d.not_after_utc, now),
    ).label("week")
    weeks = [0] * TIMELINE_WEEKS
    expired = later = 0
    for index, count in connection.execute(
        select(bucket, func.count(distinct(d.certificate_sha256)))
        .where(_current_leaves())
        .group_by(bucket)
    ):
        if index < 0:
            expired += int(count)
        elif index >= TIMELINE_WEEKS:
            later += int(count)
        else:
            weeks[int(index)] += int(count)
    issuer_name = func.coalesce(c.issuer_cn, c.issuer).label("issuer")
    count = func.count(distinct(d.certificate_sha256))
    issuers = connection.execute(
        select(issuer_name, count)
        .select_from(DEPLOYMENTS.join(CERTIFICATES, c.sha256_hex == d.certificate_sha256))
        .where(_current_leaves())
        .group_by(issuer_name)
        .order_by(count.desc(), issuer_name)
        .limit(top_issuers)
    ).all()
    return Overview(
        endpoints_by_status=tuple((str(s), int(n)) for s, n in statuses),
        certificates=expired + sum(weeks) + later,
        expired=expired,
        expiring_by_week=tuple(weeks),
        later=later,
        issuers=tuple((str(i), int(n)) for i, n in issuers),
        grades=grade_spread(connection),
        open_alerts_by_severity=open_alerts_by_severity(connection) if with_alerts else (),
    )


def open_alerts_by_severity(connection: Connection) -> tuple[tuple[str, int], ...]:
    """Active (open or acknowledged) alerts per severity."""
    a = ALERTS.c
    alerts = connection.execute(
        select(a.severity, func.count())
        .where(a.state != "resolved")
        .group_by(a.severity)
        .order_by(a.severity)
    ).all()
    return tuple((str(s), int(n)) for s, n in alerts)


def _week_index(connection: Connection, column: Any, now: datetime) -> ColumnElement[Any]:
    if connection.dialect.name == "sqlite":
        days = func.julianday(column) - func.julianday(literal(sqlite_utc_text(now)))
        return cast(days / 7, Integer)
    seconds = func.extract("epoch", column - literal(now))
    return cast(func.floor(seconds / (7 * 86400)), Integer)


GRADE_COLUMN = "grade"
"""The column of ``endpoints`` or ``observations`` that holds a TLS grade, once recorded."""


def grade_spread(connection: Connection) -> tuple[tuple[str, int], ...] | None:
    """Endpoints per latest recorded grade, ``None`` when the store has no grades column.

    Grades come from the TLS-configuration assessment, which runs daily rather than on
    every scan; the endpoint row keeps the latest one (a scan without the assessment
    leaves it as it was, revision 0007), so every graded endpoint counts, not only those
    whose very last scan was an assessment, and no observation is read: reading each
    endpoint's latest observation cost 130 ms of the overview's 360 at 1,000,000
    observations.
    """
    columns = {col["name"] for col in inspect(connection).get_columns("endpoints")}
    if GRADE_COLUMN not in columns:
        return None
    grade = ENDPOINTS.c.grade
    rows = connection.execute(
        select(grade, func.count()).where(grade.is_not(None)).group_by(grade).order_by(grade)
    ).all()
    return tuple((str(g), int(n)) for g, n in rows)


# Inventory -----------------------------------------------------------------------------


class SortKey(enum.StrEnum):
    """The inventory's sortable columns."""

    EXPIRES = "expires"
    HOST = "host"
    SUBJECT = "subject"
    ISSUER = "issuer"
    STATUS = "status"


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryQuery:
    """What the inventory page asks for.

    Attributes:
        search: Text found in host, subject CN, issuer CN or SANs, or a fingerprint
            prefix; empty for all.
        status: Only endpoints whose last status is this; ``None`` for all.
        expiring_within_days: Only certificates expiring before ``now`` plus this
            (expired ones included); ``None`` for all.
        issuer: Issuer DN containing this text; empty for all.
        tag: Endpoints carrying this label; empty for all.
        sort: The column to sort by.
        descending: Sort direction.
        page: 1-based page number.
        per_page: Rows per page (at most ``MAX_PAGE_SIZE``).
    """

    search: str = ""
    status: str | None = None
    expiring_within_days: int | None = None
    issuer: str = ""
    tag: str = ""
    sort: SortKey = SortKey.EXPIRES
    descending: bool = False
    page: int = 1
    per_page: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryEntry:
    """One row of the inventory page: an endpoint and the leaf it serves now."""

    endpoint_id: int
    target: Target
    last_status: str
    sha256_hex: str
    subject_cn: str | None
    subject: str
    issuer_cn: str | None
    not_after_utc: datetime
    key_type: str
    key_bits: int


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryPage:
    """A page of the inventory and the total it is part of."""

    entries: tuple[InventoryEntry, ...]
    total: int
    query: InventoryQuery


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def inventory_page(
    connection: Connection, query: InventoryQuery, *, now: datetime
) -> InventoryPage:
    """One page of current leaf deployments, filtered, searched and sorted.

    Raises:
        ValueError: ``page`` below 1 or ``per_page`` outside 1..``MAX_PAGE_SIZE``.
    """
    if query.page < 1:
        raise ValueError("page must be 1 or more")
    if not 1 <= query.per_page <= MAX_PAGE_SIZE:
        raise ValueError(f"per_page must be between 1 and {MAX_PAGE_SIZE}")
    d, e, c = DEPLOYMENTS.c, ENDPOINTS.c, CERTIFICATES.c
    conditions: list[Any] = [_current_leaves()]
    search = query.search.strip()[:_SEARCH_MAX_CHARS].lower()
    if search:
        pattern = f"%{_like_escape(search)}%"
        fields = (e.host, c.subject_cn, c.issuer_cn, cast(c.san_dns, _text_type()))
        matches = [func.lower(f).like(pattern, escape="\\") for f in fields]
        hexdigits = search.replace(":", "")
        if hexdigits and all(ch in "0123456789abcdef" for ch in hexdigits):
            matches.append(c.sha256_hex.like(_like_escape(hexdigits) + "%", escape="\\"))
        conditions.append(or_(*matches))
    if query.status:
        conditions.append(e.last_status == query.status)
    if query.expiring_within_days is not None:
        conditions.append(d.not_after_utc < now + timedelta(days=query.expiring_within_days))
    if query.issuer.strip():
        pattern = f"%{_like_escape(query.issuer.strip().lower())}%"
        conditions.append(func.lower(c.issuer).like(pattern, escape="\\"))
    if query.tag.strip():
        t = ENDPOINT_TAGS.c
        conditions.append(
            d.endpoint_id.in_(select(t.endpoint_id).where(t.tag == query.tag.strip()))
        )
    joined = DEPLOYMENTS.join(ENDPOINTS, e.id == d.endpoint_id).join(
        CERTIFICATES, c.sha256_hex == d.certificate_sha256
    )
    where = and_(*conditions)
    # The total joins only the tables its filters read: every current leaf has its
    # endpoint and certificate rows (foreign keys), and the certificate rows are the
    # large ones (facts, DER).
    needs_certificates = bool(search or query.issuer.strip())
    needs_endpoints = bool(search or query.status)
    counted: Any = DEPLOYMENTS
    if needs_endpoints:
        counted = counted.join(ENDPOINTS, e.id == d.endpoint_id)
    if needs_certificates:
        counted = counted.join(CERTIFICATES, c.sha256_hex == d.certificate_sha256)
    total = connection.execute(select(func.count()).select_from(counted).where(where)).scalar_one()
    sort_column: Any = {
        SortKey.EXPIRES: d.not_after_utc,
        SortKey.HOST: e.host,
        SortKey.SUBJECT: c.subject_cn,
        SortKey.ISSUER: c.issuer_cn,
        SortKey.STATUS: e.last_status,
    }[query.sort]
    primary = sort_column.desc() if query.descending else sort_column.asc()
    rows = connection.execute(
        select(
            e.id,
            e.host,
            e.port,
            e.sni,
            e.starttls,
            e.last_status,
            c.sha256_hex,
            c.subject,
            c.subject_cn,
            c.issuer_cn,
            d.not_after_utc,
            c.key_type,
            c.key_bits,
        )
        .select_from(joined)
        .where(where)
        .order_by(primary, e.host, e.port, e.id)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    ).all()
    entries = tuple(
        InventoryEntry(
            endpoint_id=r.id,
            target=target_from_columns(r.host, r.port, r.sni, r.starttls),
            last_status=r.last_status,
            sha256_hex=r.sha256_hex,
            subject=r.subject,
            subject_cn=r.subject_cn,
            issuer_cn=r.issuer_cn,
            not_after_utc=r.not_after_utc,
            key_type=r.key_type,
            key_bits=r.key_bits,
        )
        for r in rows
    )
    return InventoryPage(entries=entries, total=int(total), query=query)


def _text_type() -> Any:
    from sqlalchemy import Text

    return Text()


def get_endpoint(connection: Connection, endpoint_id: int) -> EndpointRecord | None:
    """The endpoint with that id, ``None`` if none."""
    row = connection.execute(select(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id)).first()
    if row is None:
        return None
    tags = tags_for(connection, (endpoint_id,))
    return endpoint_record(row, tags.get(endpoint_id, ()))


def endpoint_statuses(connection: Connection) -> tuple[str, ...]:
    """The statuses endpoints are in now, for the inventory's status filter."""
    e = ENDPOINTS.c
    return tuple(
        str(s)
        for s in connection.execute(
            select(e.last_status).distinct().order_by(e.last_status)
        ).scalars()
    )


def latest_chain(connection: Connection, sha256_hex: str) -> tuple[str, ...]:
    """The chain (leaf first) last served together with this certificate, by fingerprint."""
    from certvigil.store.models import OBSERVATIONS

    o = OBSERVATIONS.c
    row = connection.execute(
        select(o.chain_sha256).where(o.leaf_sha256 == sha256_hex).order_by(o.id.desc()).limit(1)
    ).first()
    return tuple(row[0]) if row is not None and row[0] else (sha256_hex,)


def latest_findings(connection: Connection, sha256_hex: str) -> Sequence[dict[str, Any]]:
    """The findings of the newest observation that served this certificate as its leaf."""
    from certvigil.store.models import OBSERVATIONS

    o = OBSERVATIONS.c
    row = connection.execute(
        select(o.findings).where(o.leaf_sha256 == sha256_hex).order_by(o.id.desc()).limit(1)
    ).first()
    return tuple(row[0]) if row is not None and row[0] else ()
