"""The projection's pure parts: status ranks, decoding, merge rules, cursors."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from fastapi import HTTPException
from projection.api import pagination
from projection.decoding import DeadLetterFact, EventFact, PoisonFact, Raw, TimerFact, decode
from projection.delivery import message_status, part_status
from projection.tables import Table, earliest_by, first, greatest, latest_by, least
from projection_helpers import START
from projection_scripts import ConversationScript
from switchboard_contracts.deadletter import DeadLetter


@pytest.mark.parametrize(("send_status", "reported", "expected"), [
    (None, [], "generated"),
    ("accepted", [], "accepted"),
    ("attempted", [], "attempted"),
    ("sent", [], "queued"),
    ("sent", ["sent", "queued"], "sent"),
    ("sent", ["read", "delivered", "sent"], "read"),  # in any order, the furthest
    ("sent", ["failed", "sent"], "failed"),
    ("sent", ["delivered", "undelivered"], "delivered"),  # no failure once on the phone
    ("failed", [], "failed"),
    ("sent", ["some_future_status"], "queued"),
])
def test_a_part_is_as_far_as_its_furthest_status(
        send_status: str | None, reported: list[str], expected: str) -> None:
    assert part_status(send_status, reported) == expected


def test_a_reply_is_as_far_as_its_least_advanced_part() -> None:
    assert message_status("inbound", []) == "received"
    assert message_status("outbound", []) == "generated"
    assert message_status("outbound", ["read", "delivered"]) == "delivered"
    assert message_status("outbound", ["read", "undelivered", "sent"]) == "undelivered"


def raw(data: bytes, *, stream: str = "GATEWAY", headers: dict[str, str] | None = None,
        subject: str = "gateway.Anything") -> Raw:
    return Raw(stream, 7, subject, data, headers)


# The subject names the event's type (the one-pass path), or does not (the general one).
@pytest.mark.parametrize("subject", ["gateway.InboundMessageReceived", "gateway.Anything"])
def test_decoding_tells_events_timers_dead_letters_and_poison_apart(subject: str) -> None:
    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    talk.text_message("Hi", reply="Hello")
    envelope = talk.events[0].envelope

    def raw(data: bytes, *, stream: str = "GATEWAY",
            headers: dict[str, str] | None = None) -> Raw:
        return Raw(stream, 7, subject, data, headers)

    event = decode(raw(envelope.to_bytes()))
    assert isinstance(event, EventFact) and event.data is not None
    assert event.data.TYPE == "InboundMessageReceived"

    newer = envelope.model_copy(update={"type": "SomethingNew"})
    unknown = decode(raw(newer.to_bytes()))
    assert isinstance(unknown, EventFact) and unknown.data is None  # timeline only

    timer = decode(raw(envelope.to_bytes(), headers={"Nats-Schedule": "@at 2030-01-01T00:00Z"}))
    assert isinstance(timer, TimerFact)

    for poison, reason in (
        (b"{", "malformed envelope"),
        (envelope.model_copy(update={"version": "2.0"}).to_bytes(), "unsupported version"),
        (envelope.model_copy(update={"data": {**envelope.data, "body": 424242}}).to_bytes(),
         "invalid InboundMessageReceived payload"),
    ):
        found = decode(raw(poison))
        assert isinstance(found, PoisonFact) and found.reason.startswith(reason)
        assert "424242" not in (found.error or "")  # field and message, never the value

    letter = DeadLetter(stream="AGENT", consumer="c", subject="agent.X", stream_seq=3,
                        deliveries=5, reason="r", payload_b64="")
    assert isinstance(decode(raw(letter.model_dump_json().encode(), stream="DEADLETTER")),
                      DeadLetterFact)
    assert isinstance(decode(raw(b"[]", stream="DEADLETTER")), PoisonFact)


def test_one_pass_decoding_gives_what_the_envelope_then_its_payload_give() -> None:
    talk = ConversationScript("clinic", "whatsapp:+447700900001", start=START)
    talk.text_message("Hi", reply="Hello", parts=2)
    talk.voice_note("Change my address", reply="Send it")
    checked = 0
    for published in talk.events:
        if "Nats-Schedule" in published.headers:
            continue
        wire = published.envelope.to_bytes()
        fast = decode(raw(wire, subject=published.subject))
        general = decode(raw(wire, subject="x.NotATypeName"))
        assert isinstance(fast, EventFact) and isinstance(general, EventFact)
        assert fast.envelope.model_dump(exclude={"data"}) == general.envelope.model_dump(
            exclude={"data"})
        assert fast.data == general.data, published.subject
        checked += fast.data is not None
    assert checked >= 8
    # Only the types a read model reads are typed for it.
    only_inbound = decode(raw(talk.events[1].envelope.to_bytes(),
                              subject=talk.events[1].subject), read={"Nothing"})
    assert isinstance(only_inbound, EventFact) and only_inbound.data is None


TABLE = Table("t", ("id",), {"a": first, "lo": least, "n": greatest, "s": latest_by("n"),
                             "e": earliest_by("lo")})


def test_a_table_upserts_each_column_by_its_rule() -> None:
    assert TABLE.columns == ("id", "a", "lo", "n", "s", "e")
    assert "a = COALESCE(t.a, EXCLUDED.a)" in TABLE.upsert_sql
    assert "n = GREATEST(t.n, EXCLUDED.n)" in TABLE.upsert_sql
    assert "ON CONFLICT (id) DO UPDATE" in TABLE.upsert_sql
    with pytest.raises(KeyError):
        TABLE.check({"id": 1, "typo": 2})


FACTS = [
    {"id": 1, "a": "x", "lo": 5, "n": 1, "s": "accepted", "e": "five"},
    {"id": 1, "lo": 3, "n": 3, "s": "sent", "e": "three"},
    {"id": 1, "a": "x", "n": 2, "s": "attempted"},
    {"id": 1, "lo": 9, "e": "nine"},
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(len(FACTS)))))
def test_merging_in_a_batch_gives_the_same_row_in_any_order(order: tuple[int, ...]) -> None:
    merged = FACTS[order[0]]
    for index in order[1:]:
        merged = TABLE.merge(merged, FACTS[index])
        merged = TABLE.merge(merged, FACTS[index])  # and a duplicate
    assert merged == {"id": 1, "a": "x", "lo": 3, "n": 3, "s": "sent", "e": "three"}


def test_a_cursor_round_trips_and_a_forged_one_is_refused() -> None:
    at = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)
    cursor = pagination.encode(at, "cv1", 7)
    assert pagination.decode(cursor, (datetime, str, int)) == (at, "cv1", 7)
    assert pagination.decode(None, (datetime,)) is None
    for forged in ("%%%", pagination.encode("x"), pagination.encode(at, 5, 7)):
        with pytest.raises(HTTPException) as refused:
            pagination.decode(forged, (datetime, str, int))
        assert refused.value.status_code == 400
