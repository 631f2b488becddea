"""``switchboard-operator`` against the operator API over HTTP (the conversation service is
a fake responder: the API's own tests say what it forwards)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import Result
from fake_conversation import fake_conversation
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from projection import operator_cli
from projection_helpers import START, add_operator_key, add_tenant, wait_caught_up
from projection_scripts import ConversationScript, publish
from switchboard_contracts.commands import Claim, CommandResult, SendTemplate
from switchboard_devstack.serving import serve_here
from switchboard_runtime import Service
from typer.testing import CliRunner

ADA = "whatsapp:+447700900001"


async def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """The CLI is synchronous: it runs on a thread while this loop serves the API."""
    return await asyncio.to_thread(CliRunner().invoke, operator_cli.app, list(args),
                                   env={"COLUMNS": "200", **(env or {})})


async def test_an_operator_works_a_conversation_from_the_cli(
        projection: Service, js: JetStreamContext, nc: NATS, tmp_path: Path) -> None:
    assert projection.db is not None
    reader = await add_tenant(projection.db, js, "clinic")
    ann = await add_operator_key(projection.db, js, "clinic", "ann")
    ada = ConversationScript("clinic", ADA, start=START)
    ada.voice_note("I need to talk to someone", reply="Of course.")
    ada.ask_for_person("human")
    ada.claim("ann")
    ada.outbound("operator", "operator_reply", text="Hi, Ann here.", operator_id="ann",
                 statuses=("sent", "delivered", "read"))
    await publish(js, ada.events)
    await wait_caught_up(js)
    cid = ada.conversation_id

    async with serve_here(projection.app) as url, fake_conversation(nc) as conversation:
        # The URL and key from the stack's env file, as `make run` writes them.
        env_file = tmp_path / "stack.env"
        env_file.write_text(f"SB_OTHER=1\nSWITCHBOARD_OPERATOR_URL={url}\n"
                            f"SWITCHBOARD_OPERATOR_KEY={ann}\n")
        from_file = ("--env-file", str(env_file))
        queue = await run(*from_file, "queue")
        shown = await run(*from_file, "show", cid)
        # ... or from the environment.
        env = {"SWITCHBOARD_OPERATOR_URL": url, "SWITCHBOARD_OPERATOR_KEY": ann}
        claimed = await run("--env-file", str(tmp_path / "none"), "claim", cid, env=env)
        templated = await run("template", cid, "appointment_reminder", "--var", "1=Thursday",
                              "--var", "2=3 pm", env=env)
        notified = await run("notify", "whatsapp:+447700900002", "appointment_reminder",
                             "--var", "1=Friday", env=env)
        conversation.answer = lambda command: CommandResult(
            accepted=False, reason="outside_24h_window", conversation_id=cid)
        refused = await run("reply", cid, "Are you there?", env=env)
        as_reader = await run("release", cid, env={**env, "SWITCHBOARD_OPERATOR_KEY": reader})
        bad_key = await run("queue", env={**env, "SWITCHBOARD_OPERATOR_KEY": "sbk_wrong"})
        bad_var = await run("template", cid, "x", "--var", "novalue", env=env)
        received = [command for _, command in conversation.received]
    async with serve_here(projection.app) as url:  # nobody answers commands now
        unanswered = await run("close", cid, env={**env, "SWITCHBOARD_OPERATOR_URL": url})
    nowhere = await run("queue", env=env)  # the server is gone
    missing = await run("queue", "--env-file", str(tmp_path / "none"))

    assert queue.exit_code == 0, queue.output
    assert cid in queue.output and "human (ann)" in queue.output and "human" in queue.output
    assert shown.exit_code == 0, shown.output
    for seen in ("I need to talk to someone", "A person will answer you shortly.",
                 "Hi, Ann here.", "ann (operator)", "✓✓ read", "human (ann)"):
        assert seen in shown.output, seen
    assert claimed.exit_code == 0 and "claimed" in claimed.output, claimed.output
    assert templated.exit_code == 0 and notified.exit_code == 0
    claim, template, notify, reply = received
    assert isinstance(claim, Claim) and (claim.tenant_id, claim.operator_id) == ("clinic", "ann")
    assert f"switchboard-trace {claim.command_id}" in claimed.output
    assert isinstance(template, SendTemplate)
    assert template.variables == {"1": "Thursday", "2": "3 pm"}
    assert isinstance(notify, SendTemplate) and notify.conversation_id is None
    assert reply.command == "reply"
    assert refused.exit_code == 1
    assert "refused: the 24-hour window is closed" in refused.output
    assert as_reader.exit_code == 2 and "operator key is needed" in as_reader.output
    assert bad_key.exit_code == 2 and "key was refused" in bad_key.output
    assert bad_var.exit_code == 2 and "N=value" in bad_var.output
    assert unanswered.exit_code == 3 and "did not answer" in unanswered.output
    assert nowhere.exit_code == 3 and "cannot reach" in nowhere.output
    assert missing.exit_code == 2 and "SWITCHBOARD_OPERATOR_URL" in missing.output
