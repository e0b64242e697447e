"""Cutting due targets into shards, and the order they may run in (pure).

Politeness across workers rests on one rule: every connection to one destination is
made by one worker at a time. A destination is the address a target resolved to (its
/24 or /64 when a per-subnet limit is set; its host name when it did not resolve). A
shard holds whole destinations, so the worker's own per-address and per-subnet limits
hold for the whole estate; a destination with more targets than fit in one shard is
cut into several shards that :class:`DispatchOrder` releases one after another, never
two at once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from certvigil.errors import CertvigilError
from certvigil.targets.ipaddr import parse_ip
from certvigil.targets.target import StartTLS, Target

PAYLOAD_VERSION = 1
"""Version of a shard's JSON message; a worker refuses a version it does not know."""

MAX_SHARD_ITEMS = 10_000
"""Most targets one message may carry (a bound on what a worker accepts)."""


class ShardPayloadError(CertvigilError):
    """A shard message that is not one this worker can run (names the field)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardItem:
    """One target of a shard, with the addresses the scheduler resolved it to."""

    index: int
    target: Target
    addresses: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Shard:
    """One task: targets sharing trust settings and time-out, and whole destinations."""

    id: str
    round_id: str
    group: dict[str, Any]
    """The scan settings the shard shares (trust settings and time-out), as JSON values."""
    destinations: frozenset[str]
    items: tuple[ShardItem, ...]

    def to_json(self) -> dict[str, Any]:
        """The message a worker receives."""
        return {
            "version": PAYLOAD_VERSION,
            "shard": self.id,
            "round": self.round_id,
            "group": self.group,
            "destinations": sorted(self.destinations),
            "items": [_item_json(item) for item in self.items],
        }

    @classmethod
    def from_json(cls, value: object) -> Shard:
        """Read a message back; anything malformed raises :class:`ShardPayloadError`."""
        if not isinstance(value, dict):
            raise ShardPayloadError("shard message: expected an object")
        if value.get("version") != PAYLOAD_VERSION:
            raise ShardPayloadError(
                f"shard message: version {value.get('version')!r} is not {PAYLOAD_VERSION}"
            )
        items = value.get("items")
        if not isinstance(items, list) or len(items) > MAX_SHARD_ITEMS:
            raise ShardPayloadError(
                f"shard message: items must be a list of at most {MAX_SHARD_ITEMS}"
            )
        group = value.get("group")
        if not isinstance(group, dict):
            raise ShardPayloadError("shard message: group must be an object")
        destinations = value.get("destinations", [])
        if not isinstance(destinations, list) or not all(isinstance(d, str) for d in destinations):
            raise ShardPayloadError("shard message: destinations must be a list of strings")
        return cls(
            id=_text(value, "shard"),
            round_id=_text(value, "round"),
            group=group,
            destinations=frozenset(destinations),
            items=tuple(_item(raw, n) for n, raw in enumerate(items)),
        )


HANDED_BACK_KEY = "handed_back"
"""Optional field of a shard message sent again by a worker that handed it back."""


def with_handed_back(payload: dict[str, Any], *, attempt: int, index: int) -> dict[str, Any]:
    """The message again, noting that ``attempt`` stopped at item ``index`` alive.

    A worker that gives a shard back because the store refused its writes cannot clear
    the item it was scanning carefully in the shard's row; the note tells the next
    delivery that this item was not a worker death.
    """
    return {**payload, HANDED_BACK_KEY: {"attempt": attempt, "index": index}}


def handed_back(payload: object) -> tuple[int, int] | None:
    """``(attempt, item index)`` of a message's hand-back note, if it has a valid one."""
    if not isinstance(payload, dict):
        return None
    note = payload.get(HANDED_BACK_KEY)
    if not isinstance(note, dict):
        return None
    attempt, index = note.get("attempt"), note.get("index")
    if type(attempt) is not int or type(index) is not int:
        return None
    return attempt, index


def _text(value: dict[str, Any], key: str, *, where: str = "shard message") -> str:
    text = value.get(key)
    if not isinstance(text, str) or not text or len(text) > 255:
        raise ShardPayloadError(f"{where}: {key} must be a non-empty string")
    return text


def _item_json(item: ShardItem) -> dict[str, Any]:
    target = item.target
    return {
        "index": item.index,
        "host": target.host,
        "port": target.port,
        "sni": target.sni,
        "starttls": None if target.starttls is None else target.starttls.value,
        "addresses": None if item.addresses is None else list(item.addresses),
        "tags": list(item.tags),
    }


def _item(raw: object, position: int) -> ShardItem:
    where = f"shard message: item {position}"
    if not isinstance(raw, dict):
        raise ShardPayloadError(f"{where}: expected an object")
    index, port = raw.get("index"), raw.get("port")
    if not isinstance(index, int) or not isinstance(port, int):
        raise ShardPayloadError(f"{where}: index and port must be integers")
    sni, starttls = raw.get("sni"), raw.get("starttls")
    addresses, tags = raw.get("addresses"), raw.get("tags", [])
    try:
        target = Target(
            host=_text(raw, "host", where=where),
            port=port,
            sni=sni if isinstance(sni, str) else None,
            starttls=None if starttls is None else StartTLS(starttls),
        )
    except (ValueError, TypeError) as exc:
        raise ShardPayloadError(f"{where}: {exc}") from exc
    if addresses is not None and not (
        isinstance(addresses, list) and all(isinstance(a, str) for a in addresses)
    ):
        raise ShardPayloadError(f"{where}: addresses must be a list of strings")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ShardPayloadError(f"{where}: tags must be a list of strings")
    return ShardItem(
        index=index,
        target=target,
        addresses=None if addresses is None else tuple(addresses),
        tags=tuple(tags),
    )


def destination_of(item: ShardItem, *, by_subnet: bool = False) -> str:
    """The destination whose connections one worker must make alone.

    Args:
        item: The target and the addresses it resolved to (``None``: not resolved).
        by_subnet: Use the address's /24 (IPv4) or /64 (IPv6) network.
    """
    address = item.addresses[0] if item.addresses else None
    if address is None and item.target.is_ip:
        address = item.target.host
    if address is None:
        return f"name:{item.target.host}"
    ip = parse_ip(address)
    if by_subnet:
        bits = 24 if ip.version == 4 else 64
        network = int(ip) >> (ip.max_prefixlen - bits) << (ip.max_prefixlen - bits)
        return f"net:{type(ip)(network)}/{bits}"
    return f"ip:{ip}"


def plan_shards(
    items: Iterable[ShardItem],
    *,
    round_id: str,
    group: dict[str, Any],
    size: int,
    by_subnet: bool,
    new_id: Callable[[], str],
) -> list[Shard]:
    """Cut ``items`` (one settings group) into shards of at most ``size`` targets.

    Small destinations are packed together; a destination larger than ``size`` gets
    shards of its own, which :class:`DispatchOrder` runs one after another.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, not {size}")
    by_destination: dict[str, list[ShardItem]] = {}
    for item in items:
        by_destination.setdefault(destination_of(item, by_subnet=by_subnet), []).append(item)
    shards: list[Shard] = []
    packed: list[ShardItem] = []
    packed_destinations: set[str] = set()

    def close() -> None:
        if packed:
            shards.append(
                Shard(
                    id=new_id(),
                    round_id=round_id,
                    group=group,
                    destinations=frozenset(packed_destinations),
                    items=tuple(packed),
                )
            )
            packed.clear()
            packed_destinations.clear()

    for destination, members in by_destination.items():
        if len(members) > size:
            for chunk in _chunks(members, size):
                shards.append(
                    Shard(
                        id=new_id(),
                        round_id=round_id,
                        group=group,
                        destinations=frozenset({destination}),
                        items=tuple(chunk),
                    )
                )
            continue
        if len(packed) + len(members) > size:
            close()
        packed.extend(members)
        packed_destinations.add(destination)
    close()
    return shards


def _chunks(items: Sequence[ShardItem], size: int) -> Iterator[Sequence[ShardItem]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(slots=True)
class DispatchOrder:
    """Which shards may be sent now: none whose destination a running shard holds."""

    waiting: list[Shard]
    busy: set[str] = field(default_factory=set)
    running: dict[str, Shard] = field(default_factory=dict)

    def ready(self) -> list[Shard]:
        """Shards to send now (marked running); the rest keep their order."""
        sendable: list[Shard] = []
        kept: list[Shard] = []
        for shard in self.waiting:
            if shard.destinations & self.busy:
                kept.append(shard)
                continue
            self.busy |= shard.destinations
            self.running[shard.id] = shard
            sendable.append(shard)
        self.waiting = kept
        return sendable

    def finished(self, shard_id: str) -> Shard | None:
        """Release a finished shard's destinations; returns it (``None`` if unknown)."""
        shard = self.running.pop(shard_id, None)
        if shard is not None:
            self.busy -= shard.destinations
        return shard

    @property
    def done(self) -> bool:
        """Nothing waiting and nothing running."""
        return not self.waiting and not self.running


def group_key(group: dict[str, Any]) -> str:
    """A stable text form of a settings group (for logs and comparisons)."""
    return json.dumps(group, sort_keys=True, separators=(",", ":"))
