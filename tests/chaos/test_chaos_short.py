"""The fault suite, shortened for ``make test``: one fault of each kind (a sender replica
killed, the CONVERSATION stream's NATS leader killed, another NATS node killed, Postgres
stopped for 10 s, one poison event) under a small load (one of whose users writes STOP and
START, another asks for a person whom an operator answers), then every invariant checked.

It takes about 5 minutes on a 2-core machine: 12 service processes start on a 3-node cluster
(~1 min), 30 s of load, then the wait until every consumer's lag is 0 and nothing happens for
longer than the longest ack wait (60 s), then a rebuild of the read models."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.run import Options, run


@pytest.mark.timeout(900)
async def test_one_fault_of_each_kind_loses_nothing_and_sends_nothing_twice(
        tmp_path: Path) -> None:
    outcome = await run(Options(duration_s=30.0, users=6, seed=11, once=True,
                                stop_users=1, handoff_users=1,
                                services=("sender",), settle_timeout_s=150.0,
                                output=tmp_path / "chaos.json", state=tmp_path / "stack"))
    print(outcome.summary())
    assert outcome.facts.sent and outcome.facts.api_sends, "the load did not get through"
    assert {fault.kind for fault in outcome.faults} == set(Options().faults)
    people = outcome.people()
    assert people["opt_outs"] and people["handoffs"], "nobody brought people into the loop"
    assert outcome.passed, outcome.summary()
