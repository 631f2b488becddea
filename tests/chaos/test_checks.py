"""The fault suite's checks on hand-made facts: each catches what it guards, and only that."""

from __future__ import annotations

from chaos import checks
from chaos.facts import (
    Answer,
    ApiSend,
    DeadLetterRecord,
    Facts,
    OperatorAction,
    OutboundRequest,
    PartOutcome,
    PeopleEvent,
    Poison,
    ReplyPlan,
    Sent,
    Supersession,
    TurnRequest,
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


# -- people in the loop (invariant 13) ---------------------------------------------------------
def with_people() -> Facts:
    """Ada writes, opts out (STOP), writes while opted out, opts back in (START) and writes
    again; Bob's first message is in flight when he asks for a person ("human"), whom an
    operator claims, answers twice and releases; then Bob writes again."""
    messages = [("SM1", ADA, "cvA", 1, 1), ("SM2", ADA, "cvA", 2, 4), ("SM3", ADA, "cvA", 2, 7),
                ("SM4", ADA, "cvA", 2, 8), ("SM5", ADA, "cvA", 2, 11),
                ("SM6", BOB, "cvB", 1, 20), ("SM7", BOB, "cvB", 2, 22),
                ("SM8", BOB, "cvB", 2, 26), ("SM9", BOB, "cvB", 2, 30)]
    kinds = {"SM2": "stop", "SM4": "start", "SM7": "handoff"}
    plans = [("r1", ADA, 1, None, None, "hi"), ("o1", ADA, 1, "notice", "opted_out", "bye"),
             ("o2", ADA, 1, "notice", "opted_in", "welcome back"), ("r2", ADA, 2, None, None, "a2"),
             ("h1", BOB, 1, "notice", "handoff_requested", "a person will answer"),
             ("p1", BOB, 1, "operator", "operator_reply", "[op 1]"),
             ("p2", BOB, 1, "operator", "operator_reply", "[op 2]"),
             ("r3", BOB, 2, None, None, "b2")]
    return Facts(
        sent=[Sent(sid, user, kinds.get(sid, "text"), 200, seq / 10)
              for sid, user, _, _, seq in messages],
        user_messages=[UserMessage(cv, sid, turn, seq) for sid, _, cv, turn, seq in messages],
        requests=[TurnRequest("cvA", 1, 2, ("SM1",)), TurnRequest("cvA", 2, 12, ("SM5",)),
                  TurnRequest("cvB", 1, 21, ("SM6",)), TurnRequest("cvB", 2, 31, ("SM9",))],
        answers=[Answer("cvA", 1, False, "r1", 3), Answer("cvA", 2, False, "r2", 13),
                 Answer("cvB", 2, False, "r3", 32)],
        people=[PeopleEvent("cvA", 5, "UserOptedOut"), PeopleEvent("cvA", 9, "UserOptedIn"),
                PeopleEvent("cvB", 23, "HandoffRequested", "user"),
                PeopleEvent("cvB", 25, "HandoffClaimed"),
                PeopleEvent("cvB", 29, "HandoffReleased")],
        outbound=[OutboundRequest("cvA", "o1", 6, "notice", "opted_out", 1),
                  OutboundRequest("cvA", "o2", 10, "notice", "opted_in", 1),
                  OutboundRequest("cvB", "h1", 24, "notice", "handoff_requested", 1),
                  OutboundRequest("cvB", "p1", 27, "operator", "operator_reply", 1, "c1"),
                  OutboundRequest("cvB", "p2", 28, "operator", "operator_reply", 1, "c2")],
        plans=[ReplyPlan(rid, f"corr-{rid}", to, turn, (text,), kind, purpose)
               for rid, to, turn, kind, purpose, text in plans],
        outcomes=[PartOutcome(rid, 1, f"M{rid}") for rid, *_ in plans],
        api_sends=[ApiSend(f"M{rid}", to, text, f"corr-{rid}") for rid, to, *_, text in plans],
        operator_actions=[OperatorAction(BOB, "claim", "c0", True),
                          OperatorAction(BOB, "reply", "c1", True, text="[op 1]"),
                          OperatorAction(BOB, "reply", "c2", True, text="[op 2]", via="nats"),
                          OperatorAction(BOB, "release", "c3", True)],
        conversation_of={ADA: "cvA", BOB: "cvB"},
    )


def sends(facts: Facts, *reply_ids: str) -> list[ApiSend]:
    return [next(s for s in facts.api_sends if s.message_sid == f"M{rid}") for rid in reply_ids]


def test_with_people_in_the_loop_a_healthy_run_breaks_nothing() -> None:
    assert set(counts(with_people()).values()) == {0}


def test_messages_sent_while_opted_out_or_with_a_person_are_rightly_unanswered() -> None:
    # STOP itself, what Ada wrote while opted out, START; "human" and what Bob wrote to the
    # person; and Bob's first message, whose reply was in flight when he asked for a person.
    assert checks.silenced(with_people()) == {
        "SM2": "opted_out", "SM3": "opted_out", "SM4": "opted_out",
        "SM6": "person", "SM7": "person", "SM8": "person"}
    facts = with_people()
    facts.answers = [a for a in facts.answers if a.reply_event_id != "r3"]
    lost, _, _ = checks.lost(facts)  # the message after the release must be answered
    assert dict(lost.reasons) == {"turn_never_answered": 1}


def test_a_turn_superseded_into_one_not_yet_asked_for_is_dropped_by_a_handoff() -> None:
    """Bob's turn 1 reply came after his voice note; the next turn waits for its transcript
    when he asks for a person: neither his first message nor the voice note gets a reply."""
    facts = with_people()
    facts.user_messages.insert(6, UserMessage("cvB", "MM1", 2, 21))
    facts.sent.insert(6, Sent("MM1", BOB, "voice", 200, 2.15))
    facts.supersessions.append(Supersession("cvB", 1, 2, 22))
    quiet = checks.silenced(facts)
    assert (quiet["SM6"], quiet["MM1"]) == ("person", "person")
    assert counts(facts)["lost"] == 0
    # The turn after the release reuses the number the supersession handed to: its message
    # is still owed a reply.
    facts.answers = [a for a in facts.answers if a.reply_event_id != "r3"]
    assert dict(checks.lost(facts)[0].reasons) == {"turn_never_answered": 1}


def test_a_reply_reaching_an_opted_out_user_after_the_confirmation_is_a_violation() -> None:
    facts = with_people()
    facts.api_sends = [*sends(facts, "o1", "r1", "o2", "r2"), *sends(facts, "h1", "p1", "p2", "r3")]
    assert counts(facts)["opted_out_violations"] == 1
    facts = with_people()  # the same reply after the opt-in's confirmation is fine by it
    facts.api_sends = [*sends(facts, "o1", "o2", "r1", "r2"), *sends(facts, "h1", "p1", "p2", "r3")]
    assert counts(facts)["opted_out_violations"] == 0


def test_each_opt_out_is_confirmed_exactly_once() -> None:
    facts = with_people()
    facts.api_sends.insert(2, ApiSend("MX", ADA, "bye", "corr-o1"))
    assert dict(checks.opted_out_violations(facts).reasons) == {"opted_out_sent_2_times": 1}
    facts = with_people()
    facts.outbound = [o for o in facts.outbound if o.event_id != "o1"]
    assert dict(checks.opted_out_violations(facts).reasons) == {"opted_out_requested_0_times": 1}
    facts = with_people()  # the opt-in's confirmation withheld: reported, not invariant 13
    facts.outcomes[2] = PartOutcome("o2", 1, reason="opted_out")
    facts.api_sends.remove(sends(facts, "o2")[0])
    found = counts(facts)
    assert (found["opt_ins_unconfirmed"], found["opted_out_violations"]) == (1, 0)


def test_a_reply_requested_while_opted_out_or_with_a_person_is_a_violation() -> None:
    facts = with_people()
    facts.requests.append(TurnRequest("cvA", 3, 7, ("SM3",)))
    facts.requests.append(TurnRequest("cvB", 3, 26, ("SM8",)))
    assert dict(checks.opted_out_violations(facts).reasons) == {
        "reply_requested_while_opted_out": 1}
    assert dict(checks.human_mode_violations(facts).reasons) == {
        "reply_requested_while_a_person_has_it": 1}


def test_a_bot_reply_after_the_handoff_notice_or_an_operator_message_is_a_violation() -> None:
    for after in ("h1", "p2"):
        facts = with_people()
        # The reply to Bob's first message, dropped by the handoff, goes out all the same.
        facts.plans.append(ReplyPlan("r9", "corr-r9", BOB, 1, ("late",)))
        facts.outcomes.append(PartOutcome("r9", 1, "Mr9"))
        late = ApiSend("Mr9", BOB, "late", "corr-r9")
        facts.api_sends.insert(facts.api_sends.index(sends(facts, after)[0]) + 1, late)
        assert dict(checks.human_mode_violations(facts).reasons) == {
            "bot_reply_after_a_person_took_over": 1}, after


def test_each_handoff_gets_exactly_one_notice() -> None:
    facts = with_people()
    facts.outbound.append(OutboundRequest("cvB", "h2", 25, "notice", "handoff_requested", 1))
    assert dict(checks.human_mode_violations(facts).reasons) == {
        "handoff_requested_requested_2_times": 1, "handoff_requested_sent_0_times": 1}
    facts = with_people()  # an operator who takes over writes themselves: no notice
    facts.people[2] = PeopleEvent("cvB", 23, "HandoffRequested", "operator")
    facts.outbound = [o for o in facts.outbound if o.event_id != "h1"]
    assert checks.human_mode_violations(facts).count == 0


def test_operator_replies_arrive_once_each_in_order() -> None:
    facts = with_people()
    facts.api_sends[5], facts.api_sends[6] = facts.api_sends[6], facts.api_sends[5]
    assert dict(checks.operator_reply_violations(facts).reasons) == {"replies_out_of_order": 1}
    assert counts(facts)["out_of_order"] == 1
    facts = with_people()
    facts.api_sends.remove(sends(facts, "p2")[0])
    assert dict(checks.operator_reply_violations(facts).reasons) == {"reply_sent_0_times": 1}
    facts = with_people()  # a retried command the conversation accepted twice
    facts.outbound.append(OutboundRequest("cvB", "p3", 28, "operator", "operator_reply", 1, "c2"))
    assert dict(checks.operator_reply_violations(facts).reasons) == {
        "reply_requested_more_than_once": 1}


def test_operator_replies_of_one_turn_are_not_double_sends() -> None:
    facts = with_people()
    facts.api_sends.append(ApiSend("MZ", BOB, "[op 2]", "corr-p2"))
    assert counts(facts)["double_sends"] == 1  # the same request's part, sent again


def test_what_the_conversation_asked_for_is_lost_unless_sent_or_failed() -> None:
    facts = with_people()
    facts.plans = [p for p in facts.plans if p.reply_id != "h1"]
    facts.outcomes = [o for o in facts.outcomes if o.reply_id not in ("h1", "p1")]
    facts.api_sends = [s for s in facts.api_sends if s.message_sid not in ("Mh1", "Mp1")]
    lost, _, _ = checks.lost(facts)
    assert dict(lost.reasons) == {"request_never_reached_sender": 1,
                                  "part_neither_sent_nor_failed": 1}
