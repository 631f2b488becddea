"""The rules of people in the loop (ADR 0022), as pure decisions over a folded state: given
the events so far, a fact (a user message, a reply, a timer, an operator command) takes these
steps, or is refused with this reason."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from conversation.command_rules import Refused, decide_command
from conversation.handlers import Decide, decide_steps
from conversation.notices import TEXTS
from conversation.policy import TenantPolicy, policy_of
from conversation.rules import (
    Step,
    decide_handoff_deadline,
    decide_idle,
    decide_inbound,
    decide_reply,
)
from conversation.state import ConversationState, apply
from conversation.view import view_of
from switchboard_contracts import Envelope, EventData
from switchboard_contracts.commands import (
    Claim,
    Close,
    Command,
    Release,
    Reply,
    SendTemplate,
    TakeOver,
)
from switchboard_contracts.conversation_view import Mode
from switchboard_contracts.events.agent import ReplyGenerated
from switchboard_contracts.events.conversation import (
    HandoffDeadlineDue,
    IdleCheckDue,
    OutboundMessageRequested,
    ReplyRequested,
)
from switchboard_contracts.events.gateway import InboundMessageReceived
from switchboard_contracts.topology import conversation_id_for
from switchboard_tenants import TenantRecord
from switchboard_tenants.models import Template

pytestmark = pytest.mark.unit

TENANT = "clinic"
USER = "whatsapp:+447700900123"
NUMBER = "whatsapp:+14155550100"
CID = conversation_id_for(TENANT, USER)
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TEMPLATE = Template(name="appointment", content_sid="HX" + "a" * 32, language="es",
                    variables=("1", "2"))


def policy(**settings: object) -> TenantPolicy:
    return policy_of(TenantRecord(
        tenant_id=TENANT, name="Clinic", account_sid="AC" + "a" * 32,
        auth_token_encrypted="x", system_prompt="Be brief.", model="m", language="es",
        numbers=(NUMBER,), created_at=NOW, updated_at=NOW, templates=(TEMPLATE,),
        **{"handoff_deadline_s": 60, **settings},
    ))


POLICY = policy()


@dataclass
class Conversation:
    """A conversation's state, and what each fact handled appended to it."""

    policy: TenantPolicy = POLICY
    state: ConversationState = field(default_factory=lambda: ConversationState(CID))
    envelopes: list[Envelope] = field(default_factory=list)

    def run(self, decide: Decide) -> list[EventData]:
        cause = Envelope(type="Test", version="1.0", correlation_id="c", tenant_id=TENANT,
                         conversation_id=CID, data={}, occurred_at=NOW)
        decision = decide_steps(CID, cause, self.state, decide) or []
        for envelope, data in decision:
            apply(self.state, envelope, data, self.state.version + 1)
            self.envelopes.append(envelope)
        return [data for _, data in decision]

    def says(self, text: str, sid: str | None = None) -> list[EventData]:
        msg = InboundMessageReceived(message_sid=sid or f"SM{uuid.uuid4().hex}",
                                     account_sid="AC1", from_address=USER, to_address=NUMBER,
                                     body=text)
        return self.run(lambda s: decide_inbound(s, msg, NOW, policy=self.policy,
                                                 context_size=20))

    def agent(self, text: str = "answer", handoff_reason: str | None = None,
              turn: int | None = None) -> list[EventData]:
        reply = ReplyGenerated(turn=turn or self.state.turn, text=text, model="m",
                               user_address=USER, business_address=NUMBER, account_sid="AC1",
                               handoff_reason=handoff_reason)
        return self.run(lambda s: decide_reply(s, reply, f"reply-{reply.turn}",
                                               policy=self.policy, now=NOW, context_size=20))

    def deadline(self, version: int | None = None, now: datetime = NOW + timedelta(minutes=2)
                 ) -> list[EventData]:
        due = HandoffDeadlineDue(requested_version=version or self.state.handoff_requested_version)
        return self.run(lambda s: decide_handoff_deadline(s, due, policy=self.policy, now=now,
                                                          context_size=20))

    def command(self, command: Command, now: datetime = NOW
                ) -> tuple[list[EventData], str | None]:
        refused: list[Refused] = []

        def decide(state: ConversationState) -> Step | None:
            outcome = decide_command(state, command, self.policy, now)
            if isinstance(outcome, Refused):
                refused.append(outcome)
                return None
            return outcome
        events = self.run(decide)
        return events, refused[0].reason if refused else None


def types(events: list[EventData]) -> list[str]:
    return [e.TYPE for e in events]


def notices(events: list[EventData]) -> list[str]:
    return [e.purpose for e in events if isinstance(e, OutboundMessageRequested)]


def answered_once(conversation: Conversation) -> Conversation:
    """A conversation whose first message was answered by the bot."""
    conversation.says("hola")
    conversation.agent("¡Hola!")
    return conversation


def waiting() -> Conversation:
    conversation = answered_once(Conversation())
    conversation.says("humano")
    return conversation


def claimed(by: str = "ann") -> Conversation:
    conversation = waiting()
    conversation.command(Claim(command_id=f"claim-{by}-1", tenant_id=TENANT,
                               conversation_id=CID, operator_id=by))
    return conversation


# -- keywords ------------------------------------------------------------------------------
def test_stop_opts_out_with_one_confirmation_and_no_reply():
    conversation = answered_once(Conversation())
    events = conversation.says("STOP")
    assert types(events) == ["UserMessageAppended", "UserOptedOut", "OutboundMessageRequested"]
    notice = events[2]
    assert isinstance(notice, OutboundMessageRequested)
    assert (notice.kind, notice.purpose) == ("notice", "opted_out")
    assert notice.text == TEXTS["opted_out"]["es"]
    assert notice.after == "reply-1"  # after the bot's last reply
    assert view_of(conversation.state).opted_out  # type: ignore[union-attr]
    # From now on nothing: no reply, no second confirmation, no handoff.
    for text in ("hola", "STOP", "humano"):
        assert types(conversation.says(text)) == ["UserMessageAppended"]
    # Until START: its confirmation, then the bot answers again.
    events = conversation.says("comenzar")
    assert types(events) == ["UserMessageAppended", "UserOptedIn", "OutboundMessageRequested"]
    assert notices(events) == ["opted_in"]
    [opted_out] = [e for e in conversation.envelopes if e.data.get("purpose") == "opted_out"]
    assert events[2].after == str(opted_out.event_id)
    assert types(conversation.says("hola")) == ["UserMessageAppended", "ReplyRequested"]


def test_stop_supersedes_the_reply_in_flight():
    conversation = Conversation()
    conversation.says("hola")
    conversation.says("stop")
    assert conversation.state.turn in conversation.state.superseded_turns
    assert view_of(conversation.state).reply_is_stale(1)  # type: ignore[union-attr]
    assert conversation.agent("late") == []


def test_a_keyword_inside_a_sentence_is_a_message():
    conversation = answered_once(Conversation())
    assert types(conversation.says("no puedo parar de reír")) == [
        "UserMessageAppended", "ReplyRequested"]


def test_a_redelivered_message_takes_no_step_again():
    conversation = Conversation()
    conversation.says("humano", sid="SM1")
    conversation.command(Release(command_id="release-1", tenant_id=TENANT, conversation_id=CID))
    assert conversation.says("humano", sid="SM1") == []  # not a second handoff


def test_a_user_asks_for_a_person():
    conversation = Conversation()
    conversation.says("hola")  # its reply is in flight
    events = conversation.says("Humano!")
    assert types(events) == ["UserMessageAppended", "HandoffRequested",
                             "OutboundMessageRequested"]
    request = events[1]
    assert (request.source, request.reason, request.turn) == ("user", "Humano!", 1)
    assert request.deadline_at == NOW + timedelta(seconds=60)
    assert notices(events) == ["handoff_requested"]
    view = view_of(conversation.state)
    assert view is not None and view.mode is Mode.WAITING and view.reply_is_stale(1)
    assert conversation.agent("late") == []  # the handed-off turn's reply is dropped
    # Messages while waiting (or claimed) are recorded, never answered by the bot.
    assert types(conversation.says("¿hola?")) == ["UserMessageAppended"]
    assert types(conversation.says("humano")) == ["UserMessageAppended"]  # no second notice


def test_no_deadline_when_the_tenant_has_none():
    conversation = Conversation(policy=policy(handoff_deadline_s=0))
    events = conversation.says("humano")
    assert types(events)[2] == "HandoffRequested" and events[2].deadline_at is None


# -- the agent's handoff tool -------------------------------------------------------------
def test_the_agent_hands_off_instead_of_answering():
    conversation = Conversation()
    conversation.says("quiero reclamar")
    events = conversation.agent("(not sent)", handoff_reason="complaint")
    assert types(events) == ["HandoffRequested", "OutboundMessageRequested"]
    assert (events[0].source, events[0].reason, events[0].turn) == ("agent", "complaint", 1)
    assert conversation.state.mode is Mode.WAITING
    assert not conversation.state.reply_in_flight and 1 not in conversation.state.answered_turns
    assert conversation.agent("again", handoff_reason="complaint", turn=1) == []  # redelivered


# -- the handoff deadline ----------------------------------------------------------------------
@pytest.mark.parametrize(("outcome", "expected", "mode"), [
    ("bot", ["HandoffExpired", "OutboundMessageRequested", "HandoffReleased"], Mode.BOT),
    ("wait", ["HandoffExpired", "OutboundMessageRequested"], Mode.WAITING),
])
def test_an_unclaimed_handoff_expires(outcome: str, expected: list[str], mode: Mode):
    conversation = Conversation(policy=policy(handoff_unclaimed=outcome))
    conversation.says("humano")
    assert conversation.deadline(now=NOW + timedelta(seconds=30)) == []  # not yet
    events = conversation.deadline()
    assert types(events) == expected
    assert notices(events) == ["handoff_expired"]
    assert conversation.state.mode is mode
    assert conversation.deadline() == []  # fired again: nothing more
    if mode is Mode.BOT:
        assert types(conversation.says("hola")) == ["UserMessageAppended", "ReplyRequested"]


def test_a_claimed_handoff_or_an_older_one_does_not_expire():
    conversation = claimed()
    assert conversation.deadline() == []
    conversation = waiting()
    assert conversation.deadline(version=1) == []  # the timer of an earlier handoff


# -- commands ------------------------------------------------------------------------------
def claim(by: str, command_id: str = "c-claim-1") -> Claim:
    return Claim(command_id=command_id, tenant_id=TENANT, conversation_id=CID, operator_id=by)


def take_over(by: str) -> TakeOver:
    return TakeOver(command_id="c-take-1", tenant_id=TENANT, conversation_id=CID, operator_id=by)


def reply(by: str = "ann", text: str = "Hola, soy Ann", **more: object) -> Reply:
    return Reply(command_id="c-reply-1", tenant_id=TENANT, conversation_id=CID, operator_id=by,
                 text=text, **more)


def template(**more: object) -> SendTemplate:
    fields: dict[str, object] = {"command_id": "c-template-1", "tenant_id": TENANT,
                                 "conversation_id": CID, "template": "appointment",
                                 "variables": {"1": "lunes", "2": "10:00"}, **more}
    return SendTemplate.model_validate(fields)


RELEASE = Release(command_id="c-release-1", tenant_id=TENANT, conversation_id=CID)
CLOSE = Close(command_id="c-close-1", tenant_id=TENANT, conversation_id=CID)
LATER = NOW + timedelta(hours=25)  # the 24-hour window closed


@pytest.mark.parametrize(("given", "command", "now", "expected"), [
    (waiting, claim("ann"), NOW, ["HandoffClaimed"]),
    (lambda: answered_once(Conversation()), claim("ann"), NOW, "not_waiting"),
    (claimed, claim("bob"), NOW, "claimed_by_another"),
    (claimed, claim("ann", "c-claim-2"), NOW, []),  # claimed already by the same: accepted
    (lambda: answered_once(Conversation()), take_over("ann"), NOW,
     ["HandoffRequested", "HandoffClaimed"]),
    (waiting, take_over("ann"), NOW, ["HandoffClaimed"]),
    (claimed, take_over("bob"), NOW, "claimed_by_another"),
    (claimed, RELEASE, NOW, ["HandoffReleased"]),
    (waiting, RELEASE, NOW, ["HandoffReleased"]),
    (lambda: answered_once(Conversation()), RELEASE, NOW, []),
    (claimed, CLOSE, NOW, ["HandoffReleased", "ConversationClosed"]),
    (lambda: answered_once(Conversation()), CLOSE, NOW, ["ConversationClosed"]),
    (claimed, reply(), NOW, ["OutboundMessageRequested"]),
    (claimed, reply(text="", media_url="https://example.com/a.jpg"), NOW,
     ["OutboundMessageRequested"]),
    (claimed, reply(by="bob"), NOW, "not_your_conversation"),
    (waiting, reply(), NOW, "not_claimed"),
    (claimed, reply(text="  "), NOW, "empty_reply"),
    (claimed, reply(), LATER, "outside_24h_window"),
    (claimed, template(), LATER, ["OutboundMessageRequested"]),
    (claimed, template(template="nope"), NOW, "unknown_template"),
    (claimed, template(variables={"1": "lunes"}), NOW, "missing_variables"),
    (Conversation, claim("ann"), NOW, "unknown_conversation"),
    (Conversation, template(), NOW, "unknown_conversation"),
    (Conversation, template(conversation_id=None, user_address=USER), LATER,
     ["ConversationStarted", "OutboundMessageRequested"]),
])
def test_commands(given, command: Command, now: datetime, expected: list[str] | str):
    conversation = given()
    events, refused = conversation.command(command, now)
    if isinstance(expected, str):
        assert (events, refused) == ([], expected)
    else:
        assert (types(events), refused) == (expected, None)


def test_an_opted_out_user_gets_no_operator_reply_nor_template():
    conversation = claimed()
    conversation.says("stop")
    assert conversation.command(reply()) == ([], "opted_out")
    assert conversation.command(template()) == ([], "opted_out")


def test_another_tenants_conversation_is_unknown():
    conversation = claimed()
    for command in (Claim(command_id="c-other-1", tenant_id="other", conversation_id=CID,
                          operator_id="eve"),
                    Reply(command_id="c-other-2", tenant_id="other", conversation_id=CID,
                          operator_id="ann", text="hi"),
                    Close(command_id="c-other-3", tenant_id="other", conversation_id=CID),
                    template(tenant_id="other")):
        assert conversation.command(command) == ([], "unknown_conversation")


def test_a_retried_command_is_accepted_once():
    conversation = waiting()
    first = claim("ann", "c-claim-9")
    assert types(conversation.command(first)[0]) == ["HandoffClaimed"]
    conversation.command(RELEASE)
    conversation.command(TakeOver(command_id="c-take-10", tenant_id=TENANT, conversation_id=CID,
                                  operator_id="bob"))
    # The first claim, sent again (a timeout, a double click): accepted, nothing changes.
    assert conversation.command(first) == ([], None)
    assert conversation.state.operator_id == "bob"


def test_an_operator_reply_follows_the_last_outbound_and_stays_in_the_context():
    conversation = claimed()
    [notice] = [e for e in conversation.envelopes if e.type == "OutboundMessageRequested"]
    [first], _ = conversation.command(reply(text="Hola, soy Ann"))
    assert isinstance(first, OutboundMessageRequested)
    assert (first.kind, first.purpose, first.operator_id, first.command_id) == (
        "operator", "operator_reply", "ann", "c-reply-1")
    assert first.after == str(notice.event_id)
    assert (first.user_address, first.business_address) == (USER, NUMBER)
    [second], _ = conversation.command(reply(text="¿Algo más?").model_copy(
        update={"command_id": "c-reply-2"}))
    assert second.after == str(conversation.envelopes[-2].event_id)
    conversation.command(RELEASE)
    [_, request] = conversation.says("gracias")
    assert isinstance(request, ReplyRequested)
    assert [(c.role, c.content) for c in request.context][-3:] == [
        ("assistant", "Hola, soy Ann"), ("assistant", "¿Algo más?"), ("user", "gracias")]


def test_a_business_initiated_template_starts_the_conversation():
    conversation = Conversation()
    events, refused = conversation.command(
        template(conversation_id=None, user_address=USER, operator_id=None))
    assert refused is None
    started, sent = events
    assert (started.user_address, started.business_address, started.account_sid) == (
        USER, NUMBER, "AC" + "a" * 32)
    assert isinstance(sent, OutboundMessageRequested)
    assert (sent.kind, sent.content_sid, sent.content_variables, sent.template_name) == (
        "template", TEMPLATE.content_sid, {"1": "lunes", "2": "10:00"}, "appointment")
    assert conversation.state.mode is Mode.BOT and not conversation.state.window_ends_at()


def test_an_idle_close_hands_the_next_session_back_to_the_bot():
    conversation = claimed()
    idle = timedelta(hours=1)
    check = IdleCheckDue(last_activity_at=conversation.state.last_activity_at or NOW)
    later = datetime.now(UTC) + 2 * idle  # events are stamped with the real clock
    events = conversation.run(lambda s: decide_idle(s, check, later, idle))
    assert types(events) == ["HandoffReleased", "ConversationClosed"]
    assert events[0].reason == "closed" and conversation.state.mode is Mode.BOT
