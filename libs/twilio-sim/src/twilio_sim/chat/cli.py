"""``switchboard-chat``: be a WhatsApp user, through the Twilio simulator.

    switchboard-chat --to whatsapp:+14155238886            # interactive
    switchboard-chat send --text "hello"                    # one message, print the reply
    switchboard-chat send --say "what's the weather"        # a spoken voice note
    switchboard-chat send --voice note.ogg --timeout 60

Exit codes of ``send``: 0 a reply came, 1 none within --timeout, 2 bad usage or a missing
tool, 3 the webhook did not accept the message.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import threading
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape

from ..client import SimClient
from .session import ChatSession, Update
from .speech import MissingTool, content_type_for, speak

app = typer.Typer(help="Chat with Switchboard as a WhatsApp user, through the Twilio simulator.",
                  add_completion=False)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

SimUrl = Annotated[str | None, typer.Option("--sim-url", envvar="SB_SIM_URL",
                                            help="simulator base URL [default: http://127.0.0.1:8090]")]
FromAddress = Annotated[str | None, typer.Option("--from", envvar="SB_CHAT_FROM",
                                                 help="the user [default: whatsapp:+14155550101]")]
ToAddress = Annotated[str | None, typer.Option("--to", envvar="SB_CHAT_TO",
                                               help="the business number (required)")]
ProfileName = Annotated[str | None, typer.Option("--name", envvar="SB_CHAT_NAME",
                                                 help="WhatsApp profile name [default: Sim User]")]

DEFAULTS = {"sim_url": "http://127.0.0.1:8090", "from_": "whatsapp:+14155550101",
            "name": "Sim User"}
TICKS = {"queued": "🕓", "sending": "🕓", "sent": "✓", "delivered": "✓✓",
         "read": "[blue]✓✓[/blue]", "failed": "[red]✗[/red]", "undelivered": "[red]✗[/red]"}
HELP = ("type a message and Enter to send it; /voice FILE sends a voice note; "
        "/say SENTENCE speaks one; /quit leaves")


def _settings(ctx: typer.Context, **given: str | None) -> dict[str, str]:
    """Options given to this command, else to the top-level command, else the defaults."""
    parent: dict[str, str | None] = ctx.obj or {}
    merged = {k: v or parent.get(k) or DEFAULTS.get(k) for k, v in given.items()}
    if not merged.get("to"):
        err.print("[red]give the business number: --to whatsapp:+... or SB_CHAT_TO[/red]")
        raise typer.Exit(2)
    return {k: v for k, v in merged.items() if v is not None}


def _tick(message: dict[str, Any]) -> str:
    tick = TICKS.get(message["status"], str(message["status"]))
    if message.get("error_code"):
        tick += f" [red]{message['error_code']}[/red]"
    return tick


def _template(message: dict[str, Any]) -> str:
    """A template message (sent with a ContentSid) says which template it is."""
    if not message.get("content_sid"):
        return ""
    name = message.get("template") or message["content_sid"]
    return f" [magenta]template {escape(name)}[/magenta]"


def _show(update: Update) -> None:
    message = update.message
    if update.is_new:
        media = "".join(f"\n  [dim]media {escape(url)}[/dim]" for url in message["media_urls"])
        out.print(f"[bold green]assistant[/bold green]{_template(message)} "
                  f"{escape(message['body'])} {_tick(message)}{media}")
    else:
        out.print(f"  [dim]{message['sid'][-6:]}[/dim] {_tick(message)} "
                  f"[dim]{message['status']}[/dim]")


def _report_webhook(answer: dict[str, Any]) -> bool:
    status = answer["status_code"]
    if status is not None and 200 <= status < 300:
        return True
    reason = answer.get("error") or f"HTTP {status}"
    err.print(f"[red]the webhook did not accept {answer['message_sid']}: {escape(reason)} "
              f"after {answer['attempts']} attempt(s)[/red]")
    return False


async def _send(session: ChatSession, text: str | None, voice: Path | None,
                say: str | None) -> dict[str, Any]:
    if voice is not None:
        return await session.send_voice(content_type_for(voice), voice.read_bytes())
    if say is not None:
        return await session.send_voice("audio/ogg", await asyncio.to_thread(speak, say))
    return await session.send_text(text or "")


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context, sim_url: SimUrl = None, from_: FromAddress = None,
         to: ToAddress = None, name: ProfileName = None) -> None:
    """Interactive chat when no command is given."""
    ctx.obj = {"sim_url": sim_url, "from_": from_, "to": to, "name": name}
    if ctx.invoked_subcommand is None:
        settings = _settings(ctx, sim_url=sim_url, from_=from_, to=to, name=name)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_interactive(settings))


@app.command()
def send(
    ctx: typer.Context,
    text: Annotated[str | None, typer.Option(help="a text message")] = None,
    voice: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                               help="a voice note file (.ogg)")] = None,
    say: Annotated[str | None, typer.Option(help="a sentence to speak as a voice note")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait for a reply")] = 30.0,
    settle: Annotated[float, typer.Option(help="seconds to wait for more reply parts")] = 0.5,
    sim_url: SimUrl = None, from_: FromAddress = None, to: ToAddress = None,
    name: ProfileName = None,
) -> None:
    """Send one message and print the reply; exit non-zero when none comes in time."""
    if sum(x is not None for x in (text, voice, say)) != 1:
        err.print("[red]give exactly one of --text, --voice, --say[/red]")
        raise typer.Exit(2)
    settings = _settings(ctx, sim_url=sim_url, from_=from_, to=to, name=name)
    try:
        code = asyncio.run(_send_once(settings, text, voice, say, timeout, settle))
    except MissingTool as exc:
        err.print(f"[red]{exc}[/red]")
        code = 2
    except httpx.HTTPError as exc:
        err.print(f"[red]cannot talk to the simulator at {settings['sim_url']}: {exc}[/red]")
        code = 2
    raise typer.Exit(code)


async def _send_once(settings: dict[str, str], text: str | None, voice: Path | None,
                     say: str | None, timeout_s: float, settle_s: float) -> int:
    async with SimClient(settings["sim_url"]) as client:
        session = ChatSession(client, settings["from_"], settings["to"], settings["name"])
        await session.start()
        answer = await _send(session, text, voice, say)
        if not _report_webhook(answer):
            return 3
        # On stderr: stdout is the reply, for scripts. The sid is the message's correlation_id.
        err.print(f"[dim]sent as {answer['message_sid']}[/dim]")
        replies = await session.replies(timeout_s, settle_s)
    if not replies:
        err.print(f"[red]no reply within {timeout_s:g}s[/red]")
        return 1
    for reply in replies:
        # Plain text on stdout, so scripts can read the reply.
        print(reply["body"])
        for url in reply["media_urls"]:
            print(url)
    return 0


def _read_lines(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
    # A daemon thread: a blocked input() must not keep the program alive at exit.
    while True:
        try:
            line: str | None = input()
        except EOFError:
            line = None
        loop.call_soon_threadsafe(lines.put_nowait, line)
        if line is None:
            return


async def _interactive(settings: dict[str, str]) -> None:
    async with SimClient(settings["sim_url"]) as client:
        session = ChatSession(client, settings["from_"], settings["to"], settings["name"])
        await session.start()
        out.print(f"[bold]{escape(settings['from_'])}[/bold] → "
                  f"[bold]{escape(settings['to'])}[/bold] via {escape(settings['sim_url'])}")
        out.print(f"[dim]{HELP}[/dim]")
        watcher = asyncio.create_task(_watch(session))
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        threading.Thread(target=_read_lines, args=(asyncio.get_running_loop(), lines),
                         daemon=True).start()
        try:
            while (line := await lines.get()) is not None:
                if line.strip() in ("/quit", "/exit"):
                    break
                await _handle(session, line)
        finally:
            watcher.cancel()


async def _watch(session: ChatSession) -> None:
    async for update in session.follow():
        _show(update)


async def _handle(session: ChatSession, line: str) -> None:
    command, _, rest = line.strip().partition(" ")
    text: str | None = None
    voice: Path | None = None
    say: str | None = None
    if command == "/help":
        out.print(f"[dim]{HELP}[/dim]")
        return
    if command == "/voice":
        voice = Path(shlex.split(rest)[0]).expanduser() if rest.strip() else None
        if voice is None or not voice.is_file():
            err.print("[red]/voice needs a file: /voice path/to/note.ogg[/red]")
            return
    elif command == "/say":
        if not rest.strip():
            err.print("[red]/say needs a sentence[/red]")
            return
        say = rest.strip()
    elif not line.strip():
        return
    else:
        text = line
    try:
        answer = await _send(session, text, voice, say)
    except MissingTool as exc:
        err.print(f"[red]{exc}[/red]")
        return
    except httpx.HTTPError as exc:
        err.print(f"[red]the simulator did not take it: {exc}[/red]")
        return
    if _report_webhook(answer):
        out.print(f"  [dim]you ({answer['message_sid'][-6:]}) ✓ webhook "
                  f"{answer['status_code']}[/dim]")

