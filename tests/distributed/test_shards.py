"""Cutting targets into shards: whole destinations per shard, large ones in sequence."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.distributed.shards import (
    DispatchOrder,
    Shard,
    ShardItem,
    ShardPayloadError,
    destination_of,
    handed_back,
    plan_shards,
    with_handed_back,
)
from certvigil.targets.target import StartTLS, Target


def _item(index: int, host: str, *, addresses: tuple[str, ...] | None = None) -> ShardItem:
    return ShardItem(index=index, target=Target(host=host, port=443), addresses=addresses)


def _plan(items: list[ShardItem], size: int, *, by_subnet: bool = False) -> list[Shard]:
    ids = (f"s{n}" for n in itertools.count())
    return plan_shards(
        items,
        round_id="r",
        group={"timeout_s": 5.0},
        size=size,
        by_subnet=by_subnet,
        new_id=lambda: next(ids),
    )


def test_destination_is_the_resolved_address_or_the_name() -> None:
    assert destination_of(_item(0, "a.example", addresses=("192.0.2.7",))) == "ip:192.0.2.7"
    assert destination_of(_item(0, "192.0.2.9")) == "ip:192.0.2.9"
    assert destination_of(_item(0, "gone.example")) == "name:gone.example"
    assert destination_of(_item(0, "192.0.2.9"), by_subnet=True) == "net:192.0.2.0/24"
    assert destination_of(_item(0, "2001:db8::1"), by_subnet=True) == "net:2001:db8::/64"


def test_one_address_never_in_two_shards_that_may_run_together() -> None:
    """Names on one address share it; a big destination's shards are run one by one."""
    items = [_item(i, f"n{i}.example", addresses=("192.0.2.1",)) for i in range(7)]
    items += [_item(7 + i, f"192.0.2.{10 + i}") for i in range(3)]
    shards = _plan(items, size=3)
    assert sorted(i.index for s in shards for i in s.items) == list(range(10))
    assert all(len(s.items) <= 3 for s in shards)
    order = DispatchOrder(waiting=shards)
    first = order.ready()
    holders = [s for s in first if "ip:192.0.2.1" in s.destinations]
    assert len(holders) == 1  # the other two shards of that address wait
    order.finished(holders[0].id)
    assert [s for s in order.ready() if "ip:192.0.2.1" in s.destinations]


@given(
    st.lists(st.tuples(st.integers(1, 5), st.integers(1, 4)), min_size=1, max_size=40),
    st.integers(1, 6),
)
def test_every_item_once_and_running_shards_never_share_a_destination(
    spec: list[tuple[int, int]], size: int
) -> None:
    items = [
        _item(i, f"h{i}.example", addresses=(f"192.0.2.{address}",))
        for i, (address, _port) in enumerate(spec)
    ]
    order = DispatchOrder(waiting=_plan(items, size))
    seen: list[int] = []
    while not order.done:
        ready = order.ready()
        running = list(order.running.values())
        for a, b in itertools.combinations(running, 2):
            assert not a.destinations & b.destinations
        assert ready or order.running
        seen += [i.index for shard in ready for i in shard.items]
        order.finished(next(iter(order.running)))
    assert sorted(seen) == list(range(len(items)))


def test_payload_round_trips() -> None:
    item = ShardItem(
        index=3,
        target=Target(host="mail.example", port=25, sni="mx.example", starttls=StartTLS.SMTP),
        addresses=("192.0.2.4",),
        tags=("mail",),
    )
    shard = Shard(
        id="abc",
        round_id="r1",
        group={"timeout_s": 2.0},
        destinations=frozenset({"ip:x"}),
        items=(item,),
    )
    assert Shard.from_json(shard.to_json()) == shard


def test_a_hand_back_note_travels_with_the_shard_and_only_a_valid_one_counts() -> None:
    """The note a worker adds when it gives a shard back alive reads back as it was
    written, leaves the shard itself unchanged, and a malformed note is ignored."""
    shard = Shard(id="abc", round_id="r1", group={}, destinations=frozenset(), items=())
    noted = with_handed_back(shard.to_json(), attempt=2, index=7)
    assert handed_back(noted) == (2, 7)
    assert Shard.from_json(noted) == shard
    assert handed_back(shard.to_json()) is None
    for note in ({"attempt": "2", "index": 7}, {"attempt": True, "index": 7}, [2, 7], None):
        assert handed_back({**shard.to_json(), "handed_back": note}) is None
    assert handed_back("not a message") is None


@pytest.mark.parametrize(
    ("message", "says"),
    [
        ([], "expected an object"),
        ({"version": 99}, "version 99"),
        ({"version": 1, "items": "x", "group": {}}, "items must be a list"),
        ({"version": 1, "items": [], "group": {}, "shard": "", "round": "r"}, "shard must be"),
        (
            {
                "version": 1,
                "items": [{"index": 0, "host": "a", "port": 0}],
                "group": {},
                "shard": "s",
                "round": "r",
            },
            "item 0",
        ),
        (
            {
                "version": 1,
                "items": [{"index": "0", "host": "a", "port": 1}],
                "group": {},
                "shard": "s",
                "round": "r",
            },
            "item 0: index and port must be integers",
        ),
    ],
)
def test_malformed_messages_are_named(message: object, says: str) -> None:
    with pytest.raises(ShardPayloadError, match=says):
        Shard.from_json(message)


def test_targets_keep_their_place_with_addresses_resolved_or_not() -> None:
    """The scheduler gives each target its addresses in the targets' order: an address
    as itself, a name as it resolves (``localhost``), a name that cannot resolve (a
    label too long to encode: no query is made) as ``None``."""
    from pathlib import Path

    from certvigil.config.expand import ScheduledTarget
    from certvigil.config.model import TrustSettings
    from certvigil.config.units import Threshold
    from certvigil.distributed.scheduler import _resolved

    def scheduled(host: str) -> ScheduledTarget:
        return ScheduledTarget(
            target=Target(host=host, port=443),
            interval_s=60,
            timeout_s=5,
            thresholds=(Threshold(days=7),),
            trust=TrustSettings(ca_files=(Path("x.pem"),)),
            origin="targets[0]",
            tags=(host,),
        )

    hosts = ["127.0.0.2", "localhost", "x" * 64 + ".example", "::1", "127.0.0.3"]
    items = asyncio.run(_resolved([scheduled(h) for h in hosts], timeout_s=5))
    assert [(i.index, i.target.host, i.tags) for i in items] == [
        (n, h, (h,)) for n, h in enumerate(hosts)
    ]
    assert items[0].addresses == ("127.0.0.2",)
    assert items[1].addresses and set(items[1].addresses) <= {"127.0.0.1", "::1"}
    assert items[2].addresses is None
    assert items[3].addresses == ("::1",)
    assert items[4].addresses == ("127.0.0.3",)
