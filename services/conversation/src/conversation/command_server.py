"""Operator commands over NATS request-reply (ADR 0022): every replica subscribes to
``commands.conversation.*`` in the queue group ``conversation-commands``; one of them decides
each command (``ConversationHandlers.on_command``) and answers with a ``CommandResult``.

A command that cannot be decided now (NATS or the stream failing, a conflict storm) gets no
answer: the caller times out and says "try again" (503); nothing is half-done, and the retry
with the same command_id is accepted once.
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError
from switchboard_contracts.commands import (
    COMMAND,
    COMMAND_QUEUE,
    COMMAND_SUBJECT_PREFIX,
    CommandResult,
)
from switchboard_runtime.telemetry import get_logger

from . import metrics
from .command_rules import INVALID_COMMAND, WRONG_TENANT
from .handlers import ConversationHandlers

log = get_logger(__name__)


class CommandServer:
    def __init__(self, handlers: ConversationHandlers) -> None:
        self._handlers = handlers
        self._in_flight: set[asyncio.Task[None]] = set()

    async def subscribe(self, nc: NATS) -> Subscription:
        return await nc.subscribe(f"{COMMAND_SUBJECT_PREFIX}.*", queue=COMMAND_QUEUE,
                                  cb=self._on_message)

    async def _on_message(self, msg: Msg) -> None:
        # A task each: commands on other conversations do not wait behind this one (one
        # conversation's commands still go one at a time, under its writer lock).
        task = asyncio.create_task(self._answer(msg))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _answer(self, msg: Msg) -> None:
        result = await self.decide(msg.subject, msg.data)
        if result is None or not msg.reply:
            return
        try:
            await msg.respond(result.model_dump_json().encode())
        except Exception as error:  # the caller times out and retries the same command_id
            log.warning("command answer not sent", error=type(error).__name__)

    async def decide(self, subject: str, raw: bytes) -> CommandResult | None:
        """The answer to one command sent on ``subject``; None when it could not be decided."""
        tenant_id = subject.removeprefix(f"{COMMAND_SUBJECT_PREFIX}.")
        try:
            command = COMMAND.validate_json(raw)
        except ValidationError:
            metrics.COMMANDS.labels("unknown", INVALID_COMMAND).inc()
            return CommandResult(accepted=False, reason=INVALID_COMMAND)
        if command.tenant_id != tenant_id:  # the subject is what NATS permissions scope
            metrics.COMMANDS.labels(command.command, WRONG_TENANT).inc()
            return CommandResult(accepted=False, reason=WRONG_TENANT)
        try:
            result = await self._handlers.on_command(command)
        except Exception as error:  # no answer: the caller retries the same command_id
            log.warning("command not decided", command=command.command,
                        command_id=command.command_id, tenant_id=tenant_id,
                        error=type(error).__name__)
            metrics.COMMANDS.labels(command.command, "error").inc()
            return None
        metrics.COMMANDS.labels(command.command, result.reason or "accepted").inc()
        log.info("command decided", command=command.command, command_id=command.command_id,
                 tenant_id=tenant_id, conversation_id=result.conversation_id,
                 accepted=result.accepted, reason=result.reason)
        return result
