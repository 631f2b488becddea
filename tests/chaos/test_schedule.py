"""The fault schedule: every kind, every replica, random but reproducible, never two NATS nodes
down at once."""

from __future__ import annotations

from collections import Counter

from chaos.faults import KINDS, NATS_LEADER_KILL, NATS_NODE_KILL, schedule

SERVICES = ("gateway", "conversation", "agent", "sender", "transcription", "projection")


def test_the_full_run_kills_every_replica_of_every_service_and_the_rest_once() -> None:
    planned = schedule(KINDS, SERVICES, 2, 180.0, seed=3)
    kinds = Counter(p.kind for p in planned)
    assert kinds == {"service_kill": 12, "nats_leader_kill": 1, "nats_node_kill": 1,
                     "postgres_stop": 1, "poison": 2}
    assert {p.target for p in planned if p.kind == "service_kill"} == {
        f"{name}#{i}" for name in SERVICES for i in (1, 2)}
    assert all(18.0 <= p.at_s <= 144.0 for p in planned)
    assert [p.at_s for p in planned] == sorted(p.at_s for p in planned)
    assert schedule(KINDS, SERVICES, 2, 180.0, seed=3) == planned
    assert schedule(KINDS, SERVICES, 2, 180.0, seed=4) != planned


def test_the_short_run_has_one_fault_of_each_kind() -> None:
    planned = schedule(KINDS, ("sender",), 2, 40.0, seed=1, once=True)
    assert sorted(p.kind for p in planned) == sorted(KINDS)
    assert next(p.target for p in planned if p.kind == "service_kill").startswith("sender#")


def test_the_nats_faults_fall_in_separate_parts_of_the_run() -> None:
    for seed in range(50):
        at = {p.kind: p.at_s for p in schedule(KINDS, SERVICES, 2, 100.0, seed=seed)}
        assert at[NATS_LEADER_KILL] <= 30.0 < 50.0 <= at[NATS_NODE_KILL]
