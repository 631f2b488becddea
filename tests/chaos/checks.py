"""The fault suite's invariants, as plain functions over ``Facts``.

Each answers a ``Finding``: how many times the invariant was broken (0 is the only pass), why,
and a few examples that name sids, conversations, turns and parts (never texts or numbers).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .facts import Facts, ReplyPlan

EXAMPLES = 5


@dataclass
class Finding:
    name: str
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def add(self, reason: str, example: str, times: int = 1) -> None:
        self.count += times
        self.reasons[reason] += times
        if len(self.examples) < EXAMPLES:
            self.examples.append(f"{reason}: {example}")


def accepted_in_order(facts: Facts) -> dict[str, list[str]]:
    """Per user, the distinct sids the gateway answered 200, in the order it first did (a
    webhook refused, then delivered again, arrives with its redelivery)."""
    per_user: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()
    for sent in sorted(facts.sent, key=lambda s: s.at_s):
        if sent.status == 200 and sent.sid not in seen:
            seen.add(sent.sid)
            per_user[sent.user].append(sent.sid)
    return per_user


def answering_turn(facts: Facts, conversation_id: str, turn: int) -> int:
    """The turn whose reply answers ``turn``'s messages (following supersessions)."""
    moved = {(s.conversation_id, s.turn): s.next_turn for s in facts.supersessions}
    seen = set()
    while (conversation_id, turn) in moved and turn not in seen:
        seen.add(turn)
        turn = moved[(conversation_id, turn)]
    return turn


def lost(facts: Facts) -> tuple[Finding, Finding, Finding]:
    """Every webhook answered 200 is taken in, its turn ends with exactly one reply or
    fallback, and each part of that reply is sent or has a recorded failure. Answers (lost,
    double replies, parts the simulator shows sent but the sender never recorded)."""
    lost_finding, doubles = Finding("lost"), Finding("double_replies")
    unrecorded = Finding("unrecorded_sends")
    keys, _ = attribute_sends(facts)
    sent_keys = set(keys)
    appended = {m.message_sid: m for m in facts.user_messages}
    answers: dict[tuple[str, int], list[str]] = defaultdict(list)
    for answer in facts.answers:
        answers[(answer.conversation_id, answer.turn)].append(answer.reply_event_id)
    plans = {p.reply_id: p for p in facts.plans}
    settled = {(o.reply_id, o.part) for o in facts.outcomes}
    attempts = Counter(facts.attempts)
    for (conversation, turn), replies in answers.items():
        if len(replies) > 1:
            doubles.add("turn_answered_twice", f"{conversation} turn {turn}", len(replies) - 1)
    for sids in accepted_in_order(facts).values():
        for sid in sids:
            message = appended.get(sid)
            if message is None:
                lost_finding.add("not_appended", sid)
                continue
            turn = answering_turn(facts, message.conversation_id, message.turn)
            answered = answers.get((message.conversation_id, turn))
            if not answered:
                lost_finding.add("turn_never_answered",
                                 f"{sid} in {message.conversation_id} turn {turn}")
                continue
            plan = plans.get(answered[0])
            if plan is None:
                lost_finding.add("reply_never_reached_sender",
                                 f"{sid} in {message.conversation_id} turn {turn}")
                continue
            unsettled = [n for n in range(1, len(plan.texts) + 1)
                         if (plan.reply_id, n) not in settled]
            if unsettled and all((plan.to, plan.turn, n) in sent_keys for n in unsettled):
                unrecorded.add("sent_without_outcome_event",
                               f"{sid}: reply {plan.reply_id} parts {unsettled}")
            elif unsettled:
                lost_finding.add("part_neither_sent_nor_failed",
                                 f"{sid}: reply {plan.reply_id} part {unsettled[0]} of "
                                 f"{len(plan.texts)}, {attempts[(plan.reply_id, unsettled[0])]} "
                                 "attempt(s) recorded")
    return lost_finding, doubles, unrecorded


def attribute_sends(facts: Facts) -> tuple[list[tuple[str, int, int] | None], Finding]:
    """Each Messages API send as (recipient, turn, part), in the simulator's order: by the
    sid the sender recorded, else (a crash between the call and the record) by recipient,
    correlation and text. Answers the keys (None: unattributable) and the unattributable."""
    plans = {p.reply_id: p for p in facts.plans}
    by_sid = {o.message_sid: o for o in facts.outcomes if o.message_sid}
    by_text: dict[tuple[str, str], list[tuple[ReplyPlan, int]]] = defaultdict(list)
    for plan in facts.plans:
        for number, text in enumerate(plan.texts, start=1):
            by_text[(plan.to, text)].append((plan, number))
    unattributed = Finding("unattributed_sends")
    keys: list[tuple[str, int, int] | None] = []
    for send in facts.api_sends:
        outcome = by_sid.get(send.message_sid)
        if outcome is not None and outcome.reply_id in plans:
            plan = plans[outcome.reply_id]
            keys.append((send.to, plan.turn, outcome.part))
            continue
        candidates = [(plan, number) for plan, number in by_text.get((send.to, send.body), [])
                      if send.correlation_id in (None, plan.correlation_id)]
        if candidates:
            plan, number = candidates[0]
            keys.append((send.to, plan.turn, number))
            continue
        keys.append(None)
        unattributed.add("no_reply_part_matches", send.message_sid)
    return keys, unattributed


def double_sends(facts: Facts) -> Finding:
    """At most one Messages API call that created a message per reply part."""
    finding = Finding("double_sends")
    keys, _ = attribute_sends(facts)
    for (to, turn, part), count in Counter(k for k in keys if k is not None).items():
        if count > 1:
            conversation = facts.conversation_of.get(to, "?")
            finding.add("part_sent_more_than_once", f"{conversation} turn {turn} part {part} "
                        f"sent {count} times", count - 1)
    return finding


def out_of_order(facts: Facts) -> Finding:
    """Per conversation, user messages are taken in the order they arrived, and replies go out
    in turn order with their parts in order."""
    finding = Finding("out_of_order")
    appended = {m.message_sid: m for m in facts.user_messages}
    for sids in accepted_in_order(facts).values():
        latest_seq = latest_turn = 0
        for sid in sids:
            message = appended.get(sid)
            if message is None:
                continue  # counted as lost
            if message.seq < latest_seq:
                finding.add("message_taken_before_an_earlier_one",
                            f"{sid} in {message.conversation_id}")
            elif message.turn < latest_turn:
                finding.add("message_given_an_earlier_turn",
                            f"{sid} turn {message.turn} after turn {latest_turn}")
            latest_seq, latest_turn = max(latest_seq, message.seq), max(latest_turn, message.turn)
    keys, _ = attribute_sends(facts)
    highest: dict[str, tuple[int, int]] = {}
    for key in keys:
        if key is None:
            continue
        to, turn, part = key
        previous = highest.get(to, (0, 0))
        if (turn, part) < previous:
            finding.add("reply_part_sent_after_a_later_one",
                        f"{facts.conversation_of.get(to, '?')} turn {turn} part {part} after "
                        f"turn {previous[0]} part {previous[1]}")
        highest[to] = max(previous, (turn, part))
    return finding


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcards: ``*`` one token, ``>`` the rest."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


def dead_letters(facts: Facts) -> tuple[Finding, Finding]:
    """Only the injected poison is dead-lettered, by every durable consumer that reads it.
    Answers (unexpected dead letters, poison some consumer let through)."""
    unexpected, missed = Finding("unexpected_dead_letters"), Finding("poison_not_dead_lettered")
    poison_payloads = {p.payload for p in facts.poisons}
    for record in facts.dead_letters:
        if record.payload not in poison_payloads:
            unexpected.add(f"{record.stream}/{record.consumer}", record.subject)
    caught = {(r.payload, r.consumer) for r in facts.dead_letters}
    for poison in facts.poisons:
        for consumer, filters in facts.consumers.get(poison.stream, {}).items():
            reads = not filters or any(subject_matches(f, poison.subject) for f in filters)
            if reads and (poison.payload, consumer) not in caught:
                missed.add(consumer, f"{poison.stream} {poison.subject}")
    return unexpected, missed


def all_findings(facts: Facts) -> list[Finding]:
    lost_finding, doubles, unrecorded = lost(facts)
    _, unattributed = attribute_sends(facts)
    unexpected, missed = dead_letters(facts)
    return [lost_finding, doubles, double_sends(facts), unattributed, unrecorded,
            out_of_order(facts), unexpected, missed]


def differing_rows(before: dict[str, list[dict[str, object]]],
                   after: dict[str, list[dict[str, object]]]) -> Finding:
    """The read models as the running projection built them against a rebuild's."""
    finding = Finding("read_model_mismatches")
    for table in sorted(set(before) | set(after)):
        old, new = _rows(before.get(table, [])), _rows(after.get(table, []))
        only = (old - new) | (new - old)
        if only:
            finding.add(table, f"{len(old - new)} rows only before, {len(new - old)} only "
                        "after the rebuild", len(only))
    return finding


def _rows(rows: Iterable[dict[str, object]]) -> set[str]:
    return {repr(sorted(row.items())) for row in rows}
