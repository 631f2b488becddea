"""A stand-in for the conversation service's command responder (test code): it records every
command the operator API sends on ``commands.conversation.<tenant>`` and answers as told, so
the API's own behaviour (forwarding, 200/409/503) is tested without the real aggregate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from switchboard_contracts.commands import (
    COMMAND,
    COMMAND_QUEUE,
    COMMAND_SUBJECT_PREFIX,
    Command,
    CommandResult,
)

Answer = Callable[[Command], CommandResult | None]  # None: say nothing


def accept(command: Command) -> CommandResult:
    conversation_id = getattr(command, "conversation_id", None)
    return CommandResult(accepted=True, conversation_id=conversation_id, version=7,
                         mode="human", operator_id=command.operator_id)


class FakeConversation:
    def __init__(self) -> None:
        self.received: list[tuple[str, Command]] = []  # (subject, command)
        self.answer: Answer = accept

    async def _on_command(self, msg: Msg) -> None:
        command = COMMAND.validate_json(msg.data)
        self.received.append((msg.subject, command))
        result = self.answer(command)
        if result is not None:
            await msg.respond(result.model_dump_json().encode())


@asynccontextmanager
async def fake_conversation(nc: NATS) -> AsyncIterator[FakeConversation]:
    fake = FakeConversation()
    sub = await nc.subscribe(f"{COMMAND_SUBJECT_PREFIX}.*", queue=COMMAND_QUEUE,
                             cb=fake._on_command)
    await nc.flush()
    try:
        yield fake
    finally:
        await sub.unsubscribe()
