"""The fault suite's invariants, as plain functions over ``Facts``.

Each answers a ``Finding``: how many times the invariant was broken (0 is the only pass), why,
and a few examples that name sids, conversations, turns and parts (never texts or numbers).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .facts import (
    Answer,
    Facts,
    OutboundRequest,
    PeopleEvent,
    ReplyPlan,
    Supersession,
    TurnRequest,
    UserMessage,
)

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


def silenced(facts: Facts) -> dict[str, str]:
    """Messages the conversation rightly answers with nothing (ADR 0022): written while the
    user was opted out or a person was asked for or answering, or still owed a reply when the
    user opted out or asked for a person: waiting, in the turn in flight (dropped), or handed
    by a superseded turn to a next one not yet asked for (e.g. a voice note among them awaits
    its transcript). Answers sid -> why."""
    quiet: dict[str, str] = {}
    for events in _timelines(facts).values():
        waiting: list[str] = []  # not yet in a ReplyRequested
        owed: list[str] = []  # answered by the turn in flight
        carried: list[str] = []  # of a superseded turn, for the next one
        requested: int | None = None
        person = opted_out = False
        for event in events:
            if isinstance(event, UserMessage):
                if person or opted_out:
                    quiet[event.message_sid] = "opted_out" if opted_out else "person"
                else:
                    waiting.append(event.message_sid)
            elif isinstance(event, TurnRequest):
                requested, owed, carried = event.turn, [*carried, *event.message_sids], []
                waiting = [sid for sid in waiting if sid not in event.message_sids]
            elif isinstance(event, Answer):
                owed = [] if event.turn == requested else owed
            elif isinstance(event, Supersession):
                if event.turn == requested:
                    carried, owed = [*carried, *owed], []
            elif event.type in ("HandoffRequested", "UserOptedOut"):
                why = "person" if event.type == "HandoffRequested" else "opted_out"
                quiet.update(dict.fromkeys([*waiting, *owed, *carried], why))
                waiting, owed, carried = [], [], []
                person = person or event.type == "HandoffRequested"
                opted_out = opted_out or event.type == "UserOptedOut"
            elif event.type == "HandoffReleased":
                person = False
            elif event.type == "UserOptedIn":
                opted_out = False
    return quiet


Timeline = UserMessage | TurnRequest | Answer | Supersession | PeopleEvent


def _timelines(facts: Facts) -> dict[str, list[Timeline]]:
    """Per conversation, what decides who answers, in stream order (answers and
    supersessions without a sequence, as in hand-made facts, go after their turn's request)."""
    per: dict[str, list[tuple[int, Timeline]]] = defaultdict(list)
    request_seq = {(r.conversation_id, r.turn): r.seq for r in facts.requests}
    items: list[UserMessage | TurnRequest | PeopleEvent] = [
        *facts.user_messages, *facts.requests, *facts.people]
    for item in items:
        per[item.conversation_id].append((item.seq, item))
    ended: list[Answer | Supersession] = [*facts.answers, *facts.supersessions]
    for end in ended:
        seq = end.seq or request_seq.get((end.conversation_id, end.turn), 0)
        per[end.conversation_id].append((seq, end))
    return {c: [item for _, item in sorted(pairs, key=lambda pair: pair[0])]
            for c, pairs in per.items()}


def lost(facts: Facts) -> tuple[Finding, Finding, Finding]:
    """Every webhook answered 200 is taken in, its turn ends with exactly one reply or
    fallback (unless the conversation rightly says nothing: ``silenced``), and each part of
    that reply, and of whatever the conversation itself asked the sender for, is sent or has a
    recorded failure. Answers (lost, double replies, parts the simulator shows sent but the
    sender never recorded)."""
    lost_finding, doubles = Finding("lost"), Finding("double_replies")
    unrecorded = Finding("unrecorded_sends")
    keys, _ = attribute_sends(facts)
    sent_keys = set(keys)
    quiet = silenced(facts)
    appended = {m.message_sid: m for m in facts.user_messages}
    answers: dict[tuple[str, int], list[str]] = defaultdict(list)
    for answer in facts.answers:
        answers[(answer.conversation_id, answer.turn)].append(answer.reply_event_id)
    plans = {p.reply_id: p for p in facts.plans}
    rank = request_ranks(facts)
    settled = {(o.reply_id, o.part) for o in facts.outcomes}
    attempts = Counter(facts.attempts)
    for (conversation, turn), replies in answers.items():
        if len(replies) > 1:
            doubles.add("turn_answered_twice", f"{conversation} turn {turn}", len(replies) - 1)

    def settle(plan: ReplyPlan, what: str) -> None:
        unsettled = [n for n in range(1, len(plan.texts) + 1)
                     if (plan.reply_id, n) not in settled]
        if unsettled and all((plan.to, *order_key(plan, n, rank)) in sent_keys
                             for n in unsettled):
            unrecorded.add("sent_without_outcome_event",
                           f"{what}: reply {plan.reply_id} parts {unsettled}")
        elif unsettled:
            lost_finding.add("part_neither_sent_nor_failed",
                             f"{what}: reply {plan.reply_id} part {unsettled[0]} of "
                             f"{len(plan.texts)}, {attempts[(plan.reply_id, unsettled[0])]} "
                             "attempt(s) recorded")

    for sids in accepted_in_order(facts).values():
        for sid in sids:
            message = appended.get(sid)
            if message is None:
                lost_finding.add("not_appended", sid)
                continue
            if sid in quiet:
                continue  # rightly unanswered
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
            settle(plan, sid)
    for request in facts.outbound:
        plan = plans.get(request.event_id)
        if plan is None:
            lost_finding.add("request_never_reached_sender",
                             f"{request.purpose} {request.event_id} in "
                             f"{request.conversation_id}")
        else:
            settle(plan, f"{request.purpose} in {request.conversation_id}")
    return lost_finding, doubles, unrecorded


def request_ranks(facts: Facts) -> dict[str, int]:
    """Each ``OutboundRequest``'s stream sequence, by its event id: among the conversation's
    outbound messages of one turn, the agent's reply (rank 0) goes first, then the requests
    in the order the conversation made them."""
    return {request.event_id: request.seq for request in facts.outbound}


def order_key(plan: ReplyPlan, part: int, ranks: dict[str, int]) -> tuple[int, int, int]:
    """Where a part goes among the conversation's outbound messages: (turn, rank, part)."""
    return plan.turn, ranks.get(plan.reply_id, 0) if plan.kind else 0, part


def attributed(facts: Facts) -> list[tuple[ReplyPlan, int] | None]:
    """Each Messages API send as (plan, part), in the simulator's order: by the sid the
    sender recorded, else (a crash between the call and the record) by recipient,
    correlation and text. None: unattributable."""
    plans = {p.reply_id: p for p in facts.plans}
    by_sid = {o.message_sid: o for o in facts.outcomes if o.message_sid}
    by_text: dict[tuple[str, str], list[tuple[ReplyPlan, int]]] = defaultdict(list)
    for plan in facts.plans:
        for number, text in enumerate(plan.texts, start=1):
            by_text[(plan.to, text)].append((plan, number))
    found: list[tuple[ReplyPlan, int] | None] = []
    for send in facts.api_sends:
        outcome = by_sid.get(send.message_sid)
        if outcome is not None and outcome.reply_id in plans:
            found.append((plans[outcome.reply_id], outcome.part))
            continue
        candidates = [(plan, number) for plan, number in by_text.get((send.to, send.body), [])
                      if send.correlation_id in (None, plan.correlation_id)]
        found.append(candidates[0] if candidates else None)
    return found


def attribute_sends(facts: Facts
                    ) -> tuple[list[tuple[str, int, int, int] | None], Finding]:
    """Each Messages API send as (recipient, turn, rank, part) (``order_key``), in the
    simulator's order. Answers the keys (None: unattributable) and the unattributable."""
    ranks = request_ranks(facts)
    unattributed = Finding("unattributed_sends")
    keys: list[tuple[str, int, int, int] | None] = []
    for send, found in zip(facts.api_sends, attributed(facts), strict=True):
        if found is None:
            keys.append(None)
            unattributed.add("no_reply_part_matches", send.message_sid)
        else:
            plan, part = found
            keys.append((send.to, *order_key(plan, part, ranks)))
    return keys, unattributed


def double_sends(facts: Facts) -> Finding:
    """At most one Messages API call that created a message per reply part."""
    finding = Finding("double_sends")
    keys, _ = attribute_sends(facts)
    for (to, turn, rank, part), count in Counter(k for k in keys if k is not None).items():
        if count > 1:
            conversation = facts.conversation_of.get(to, "?")
            what = f"request at {rank}" if rank else "reply"
            finding.add("part_sent_more_than_once", f"{conversation} turn {turn} {what} part "
                        f"{part} sent {count} times", count - 1)
    return finding


def out_of_order(facts: Facts) -> Finding:
    """Per conversation, user messages are taken in the order they arrived, and replies go out
    in turn order with their parts in order; what the conversation itself asked for (notices,
    operators' messages) goes after the turn's reply, in the order it was asked for."""
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
    highest: dict[str, tuple[int, int, int]] = {}
    for key in keys:
        if key is None:
            continue
        to, *place = key
        at = (place[0], place[1], place[2])
        previous = highest.get(to, (0, 0, 0))
        if at < previous:
            finding.add("reply_part_sent_after_a_later_one",
                        f"{facts.conversation_of.get(to, '?')} (turn, rank, part) {at} after "
                        f"{previous}")
        highest[to] = max(previous, at)
    return finding


def opted_out_violations(facts: Facts) -> Finding:
    """Invariant 13, opt-out: after the opt-out confirmation the user receives nothing until
    the confirmation of their opt-in (anything requested before the opt-in, sent after the
    confirmation, breaks it); no reply is asked for while opted out; each opt-out gets exactly
    one confirmation, sent once."""
    finding = Finding("opted_out_violations")
    _confirmed_once(facts, finding, "UserOptedOut", "opted_out")
    _requested_while(facts, finding, "UserOptedOut", "UserOptedIn",
                     "reply_requested_while_opted_out")
    _silent_after(facts, finding, lambda plan: plan.purpose == "opted_out",
                  "UserOptedIn", lambda plan: True, "sent_after_the_opt_out_confirmation",
                  unmarks=lambda plan: plan.purpose == "opted_in")
    return finding


def opt_ins_unconfirmed(facts: Facts) -> Finding:
    """Each opt-in gets exactly one confirmation, sent once. Not invariant 13 (nothing reaches
    an opted-out user when it is missing), so reported rather than failing the run: the
    sender may read the conversation's view before it shows the opt-in and withhold the
    confirmation as ``opted_out`` (docs/reliability.md, open findings)."""
    finding = Finding("opt_ins_unconfirmed")
    _confirmed_once(facts, finding, "UserOptedIn", "opted_in")
    return finding


def human_mode_violations(facts: Facts) -> Finding:
    """Invariant 13, handoff: each handoff the user or the agent asked for gets exactly one
    notice, sent once; no reply is asked for while a person is asked for or answering; and
    no bot reply reaches the user after the notice or a person's message until the
    conversation is released (a reply asked for before the release)."""
    finding = Finding("human_mode_violations")
    _confirmed_once(facts, finding, "HandoffRequested", "handoff_requested",
                    lambda event: event.source != "operator")
    _requested_while(facts, finding, "HandoffRequested", "HandoffReleased",
                     "reply_requested_while_a_person_has_it")
    _silent_after(facts, finding,
                  lambda plan: plan.purpose == "handoff_requested" or plan.kind == "operator",
                  "HandoffReleased", lambda plan: plan.kind is None,
                  "bot_reply_after_a_person_took_over")
    return finding


def operator_reply_violations(facts: Facts) -> Finding:
    """Each operator reply the conversation accepted reaches the user exactly once (one
    unanswered, at most once), in the order the operator gave them; a retried command is
    asked of the sender once."""
    finding = Finding("operator_reply_violations")
    bodies: dict[str, list[str]] = defaultdict(list)
    for send in facts.api_sends:
        bodies[send.to].append(send.body)
    requested = Counter(r.command_id for r in facts.outbound if r.kind == "operator")
    for command_id, count in requested.items():
        if command_id and count > 1:
            finding.add("reply_requested_more_than_once", command_id, count - 1)
    given: dict[str, list[str]] = defaultdict(list)
    for action in facts.operator_actions:
        if action.command != "reply" or action.accepted is False:
            continue
        times = bodies[action.user].count(action.text)
        conversation = facts.conversation_of.get(action.user, "?")
        if times > 1 or (times == 0 and action.accepted):
            finding.add(f"reply_sent_{times}_times", f"{action.command_id} in {conversation}")
        if action.accepted:
            given[action.user].append(action.text)
    for user, texts in given.items():
        arrived = [body for body in dict.fromkeys(bodies[user]) if body in texts]
        if arrived != [text for text in texts if text in arrived]:
            finding.add("replies_out_of_order", facts.conversation_of.get(user, "?"))
    return finding


def _by_conversation(facts: Facts) -> dict[str, list[PeopleEvent]]:
    per: dict[str, list[PeopleEvent]] = defaultdict(list)
    for event in sorted(facts.people, key=lambda e: e.seq):
        per[event.conversation_id].append(event)
    return per


def _confirmed_once(facts: Facts, finding: Finding, cause: str, purpose: str,
                    counts: Callable[[PeopleEvent], bool] = lambda event: True) -> None:
    """Each ``cause`` event (that ``counts``) is followed, before the next one, by exactly one
    request of ``purpose``, and that request by exactly one send."""
    sends = Counter(plan.reply_id for plan, part in filter(None, attributed(facts))
                    if part == 1)
    requests: dict[str, list[OutboundRequest]] = defaultdict(list)
    for request in facts.outbound:
        if request.purpose == purpose:
            requests[request.conversation_id].append(request)
    for conversation, events in _by_conversation(facts).items():
        causes = [e for e in events if e.type == cause]
        for index, event in enumerate(causes):
            if not counts(event):
                continue
            end = causes[index + 1].seq if index + 1 < len(causes) else float("inf")
            mine = [r for r in requests[conversation] if event.seq < r.seq < end]
            if len(mine) != 1:
                finding.add(f"{purpose}_requested_{len(mine)}_times",
                            f"{cause} at {event.seq} in {conversation}")
            for request in mine:
                if sends[request.event_id] != 1:
                    finding.add(f"{purpose}_sent_{sends[request.event_id]}_times",
                                f"{request.event_id} in {conversation}")


def _requested_while(facts: Facts, finding: Finding, begins: str, ends: str,
                     reason: str) -> None:
    """No ``ReplyRequested`` between a ``begins`` event and the next ``ends``."""
    people = _by_conversation(facts)
    for request in facts.requests:
        state = False
        for event in people.get(request.conversation_id, []):
            if event.seq > request.seq:
                break
            if event.type in (begins, ends):
                state = event.type == begins
        if state:
            finding.add(reason, f"{request.conversation_id} turn {request.turn}")


def _silent_after(facts: Facts, finding: Finding, marks: Callable[[ReplyPlan], bool],
                  ends: str, silenced_plan: Callable[[ReplyPlan], bool], reason: str,
                  unmarks: Callable[[ReplyPlan], bool] = lambda plan: False) -> None:
    """In the order the user received them: after a send of a plan that ``marks`` the start
    of a silence, no send of a plan that ``silenced_plan`` which the conversation asked for
    before the silence ``ends`` (its first ``ends`` event after the mark's request), until a
    send of a plan that ``unmarks`` it (the user sees the silence end)."""
    people = _by_conversation(facts)
    positions = {r.event_id: r.seq for r in facts.outbound}
    asked = {(r.conversation_id, r.turn): r.seq for r in facts.requests}
    until: dict[str, float] = {}
    for send, found in zip(facts.api_sends, attributed(facts), strict=True):
        conversation = facts.conversation_of.get(send.to, "?")
        if found is None:
            continue
        plan, part = found
        position = (positions.get(plan.reply_id, -1) if plan.kind
                    else asked.get((conversation, plan.turn), -1))
        if marks(plan):
            until[send.to] = next((e.seq for e in people.get(conversation, [])
                                   if e.type == ends and e.seq > position), float("inf"))
        elif unmarks(plan):
            until.pop(send.to, None)
        elif silenced_plan(plan) and position < until.get(send.to, -1):
            finding.add(reason, f"{conversation} {plan.kind or 'reply'} turn {plan.turn} "
                        f"part {part}")


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
            out_of_order(facts), unexpected, missed, opted_out_violations(facts),
            human_mode_violations(facts), operator_reply_violations(facts),
            opt_ins_unconfirmed(facts)]


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
