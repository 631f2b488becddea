"""The fault suite's checks on hand-made facts: each catches what it guards, and only that."""

from __future__ import annotations

from chaos import checks
from chaos.facts import (
    Answer,
    ApiSend,
    DeadLetterRecord,
    Facts,
    PartOutcome,
    Poison,
    ReplyPlan,
    Sent,
    Supersession,
    UserMessage,
)

ADA, BOB = "whatsapp:+447700900001", "whatsapp:+447700900002"


def healthy() -> Facts:
    """Ada sends two messages, answered by turns 1 and 2 (two parts); Bob's first turn was
    superseded by his burst, which turn 2 answers with a fallback."""
    return Facts(
        sent=[Sent("SM1", ADA, "text", 200, 0.0), Sent("SM2", BOB, "text", 200, 0.1),
              Sent("SM3", BOB, "burst", 200, 0.2), Sent("SM1", ADA, "redelivery", 200, 0.3),
              Sent("SM4", ADA, "text", 200, 5.0), Sent("SM5", ADA, "text", 503, 6.0)],
        user_messages=[UserMessage("cvA", "SM1", 1, 10), UserMessage("cvB", "SM2", 1, 11),
                       UserMessage("cvB", "SM3", 2, 12), UserMessage("cvA", "SM4", 2, 20)],
        answers=[Answer("cvA", 1, False, "r1"), Answer("cvB", 2, True, "r2"),
                 Answer("cvA", 2, False, "r3")],
        supersessions=[Supersession("cvB", 1, 2)],
        plans=[ReplyPlan("r1", "SM1", ADA, 1, ("hi",)), ReplyPlan("r2", "SM2", BOB, 2, ("sorry",)),
               ReplyPlan("r3", "SM4", ADA, 2, ("a", "b"))],
        outcomes=[PartOutcome("r1", 1, "MA"), PartOutcome("r2", 1, "MB"),
                  PartOutcome("r3", 1, "MC"), PartOutcome("r3", 2, "MD")],
        api_sends=[ApiSend("MA", ADA, "hi", "SM1"), ApiSend("MB", BOB, "sorry", "SM2"),
                   ApiSend("MC", ADA, "a", "SM4"), ApiSend("MD", ADA, "b", "SM4")],
        conversation_of={ADA: "cvA", BOB: "cvB"},
    )


def counts(facts: Facts) -> dict[str, int]:
    return {finding.name: finding.count for finding in checks.all_findings(facts)}


def test_a_healthy_run_breaks_nothing() -> None:
    assert set(counts(healthy()).values()) == {0}


def test_a_message_answered_200_but_never_taken_in_is_lost() -> None:
    facts = healthy()
    facts.user_messages = [m for m in facts.user_messages if m.message_sid != "SM4"]
    lost, _, _ = checks.lost(facts)
    assert (lost.count, dict(lost.reasons)) == (1, {"not_appended": 1})


def test_a_turn_without_reply_or_a_part_without_outcome_is_lost() -> None:
    facts = healthy()
    facts.answers = [a for a in facts.answers if a.reply_event_id != "r2"]
    facts.outcomes = [o for o in facts.outcomes if (o.reply_id, o.part) != ("r3", 2)]
    facts.api_sends.pop()  # part 2 of Ada's second reply never reached Twilio
    lost, _, _ = checks.lost(facts)
    # Both of Bob's messages wait on the superseding turn 2.
    assert dict(lost.reasons) == {"turn_never_answered": 2, "part_neither_sent_nor_failed": 1}


def test_a_recorded_failure_settles_a_part() -> None:
    facts = healthy()
    facts.outcomes[-1] = PartOutcome("r3", 2, reason="stale")
    facts.api_sends.pop()
    assert counts(facts)["lost"] == 0


def test_a_part_created_twice_is_a_double_send_even_when_the_second_went_unrecorded() -> None:
    facts = healthy()
    facts.api_sends.append(ApiSend("MX", ADA, "b", "SM4"))  # a crash before the sid was stored
    assert counts(facts)["double_sends"] == 1
    facts.api_sends.append(ApiSend("MY", ADA, "unknown", None))
    assert counts(facts)["unattributed_sends"] == 1


def test_a_turn_answered_twice_is_a_double_reply() -> None:
    facts = healthy()
    facts.answers.append(Answer("cvA", 1, False, "r9"))
    assert counts(facts)["double_replies"] == 1


def test_replies_or_parts_out_of_order_are_counted() -> None:
    facts = healthy()
    facts.api_sends[2], facts.api_sends[3] = facts.api_sends[3], facts.api_sends[2]
    assert counts(facts)["out_of_order"] == 1
    facts = healthy()
    facts.api_sends = [facts.api_sends[2], facts.api_sends[3], facts.api_sends[0],
                       facts.api_sends[1]]
    assert counts(facts)["out_of_order"] == 1  # Ada's turn 1 after her turn 2


def test_messages_taken_in_out_of_arrival_order_are_counted() -> None:
    facts = healthy()
    facts.user_messages[3] = UserMessage("cvA", "SM4", 2, 5)
    assert counts(facts)["out_of_order"] == 1


def test_only_the_injected_poison_may_be_dead_lettered_and_every_reader_catches_it() -> None:
    facts = healthy()
    poison = Poison("GATEWAY", "gateway.InboundMessageReceived", b"chaos poison 1")
    facts.poisons = [poison]
    facts.consumers = {"GATEWAY": {"conversation-inbound": ("gateway.InboundMessageReceived",),
                                   "projection-gateway": (),
                                   "status": ("gateway.DeliveryStatusReported",)}}
    facts.dead_letters = [DeadLetterRecord("GATEWAY", "conversation-inbound", poison.subject,
                                           poison.payload)]
    unexpected, missed = checks.dead_letters(facts)
    assert (unexpected.count, missed.count) == (0, 1)  # the projection let it through
    facts.dead_letters.append(DeadLetterRecord("GATEWAY", "projection-gateway", poison.subject,
                                               poison.payload))
    facts.dead_letters.append(DeadLetterRecord("AGENT", "sender-replies", "agent.x", b"{}"))
    unexpected, missed = checks.dead_letters(facts)
    assert (unexpected.count, missed.count) == (1, 0)


def test_subject_wildcards() -> None:
    assert checks.subject_matches("gateway.>", "gateway.InboundMessageReceived")
    assert checks.subject_matches("conversation.*.IdleCheckDue", "conversation.cv1.IdleCheckDue")
    assert not checks.subject_matches("gateway.X", "gateway.Y")
    assert not checks.subject_matches("a.*", "a.b.c")


def test_read_models_differing_from_a_rebuild_are_reported_by_table() -> None:
    before: dict[str, list[dict[str, object]]] = {"messages": [{"id": 1, "text": "x"}],
                                                  "parts": [{"id": 1}]}
    assert checks.differing_rows(before, before).count == 0
    after: dict[str, list[dict[str, object]]] = {"messages": [{"id": 1, "text": "y"}],
                                                 "parts": [{"id": 1}]}
    finding = checks.differing_rows(before, after)
    assert (finding.count, dict(finding.reasons)) == (2, {"messages": 2})


def test_a_part_sent_but_never_recorded_is_not_lost_but_reported() -> None:
    facts = healthy()
    facts.outcomes = [o for o in facts.outcomes if (o.reply_id, o.part) != ("r3", 2)]
    found = counts(facts)
    assert (found["lost"], found["unrecorded_sends"], found["double_sends"]) == (0, 1, 0)
