from __future__ import annotations

import json

import pytest
from switchboard_contracts import Envelope, Registry, UnknownEventType, UnsupportedVersion, registry
from switchboard_contracts.events.gateway import DeliveryStatusReported, InboundMessageReceived


def inbound() -> InboundMessageReceived:
    return InboundMessageReceived(message_sid="SM1", account_sid="AC1",
                                  from_address="whatsapp:+1", to_address="whatsapp:+2", body="hi")


def test_envelope_round_trips_and_types_its_payload() -> None:
    env = Envelope.wrap(inbound(), correlation_id="SM1", tenant_id="t1")
    back = Envelope.from_bytes(env.to_bytes())
    assert back == env
    event = registry.decode(back)
    assert isinstance(event.data, InboundMessageReceived)
    assert event.data.body == "hi"
    assert back.version == "1.0" and back.type == "InboundMessageReceived"


def test_the_wire_form_is_pydantics_json() -> None:
    env = Envelope.wrap(InboundMessageReceived(
        message_sid="SM1", account_sid="AC1", from_address="whatsapp:+1", to_address="whatsapp:+2",
        body="héllo ✓ \"quoted\""), correlation_id="SM1", tenant_id="t1")
    assert env.to_bytes() == env.model_dump_json().encode()


def test_a_caused_event_keeps_correlation_and_points_at_its_cause() -> None:
    first = Envelope.wrap(inbound(), correlation_id="SM1", tenant_id="t1", conversation_id="c1")
    status = DeliveryStatusReported(message_sid="SM2", account_sid="AC1", status="sent")
    second = first.caused(status)
    assert second.correlation_id == "SM1"
    assert second.causation_id == first.event_id
    assert (second.tenant_id, second.conversation_id) == ("t1", "c1")
    assert second.event_id != first.event_id


def test_unknown_fields_are_ignored_and_minor_versions_accepted() -> None:
    raw = json.loads(Envelope.wrap(inbound(), correlation_id="SM1").to_bytes())
    raw["version"] = "1.3"
    raw["brand_new"] = 1
    raw["data"]["brand_new"] = 2
    event = registry.decode(Envelope.model_validate(raw))
    assert event.data.message_sid == "SM1"


@pytest.mark.parametrize("version", ["2.0", "0.9", "x.1"])
def test_other_major_versions_are_refused(version: str) -> None:
    env = Envelope.wrap(inbound(), correlation_id="SM1").model_copy(update={"version": version})
    with pytest.raises(UnsupportedVersion):
        registry.decode(env)


def test_unknown_types_and_double_registration_are_errors() -> None:
    fresh = Registry()
    with pytest.raises(UnknownEventType):
        fresh.model_for("Nope")
    fresh.register(InboundMessageReceived)
    fresh.register(InboundMessageReceived)  # same model again is fine

    class Impostor(InboundMessageReceived):
        pass

    with pytest.raises(ValueError, match="registered twice"):
        fresh.register(Impostor)
