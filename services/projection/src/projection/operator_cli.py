"""``switchboard-operator``: an operator's view and commands, over the operator API (ADR 0022).

    switchboard-operator queue
    switchboard-operator show <conversation_id>
    switchboard-operator claim|take-over|release|close <conversation_id>
    switchboard-operator reply <conversation_id> "text" [--media-url https://...]
    switchboard-operator template <conversation_id> NAME --var 1=Thursday
    switchboard-operator notify whatsapp:+447700900001 NAME --var 1=Thursday

The API's address and the operator's key come from ``--url``/``--key``, else the environment
(``SWITCHBOARD_OPERATOR_URL``, ``SWITCHBOARD_OPERATOR_KEY``), else ``.run/stack.env`` (written
by ``make run``). Exit codes: 0 done, 1 refused or not found, 2 a key or input problem, 3 the
service is unreachable or did not answer (nothing was done: try again).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

URL_VAR, KEY_VAR = "SWITCHBOARD_OPERATOR_URL", "SWITCHBOARD_OPERATOR_KEY"
STACK_ENV = Path(".run/stack.env")

app = typer.Typer(help="Answer WhatsApp conversations as an operator: the queue of those "
                       "waiting for a person, a conversation's messages, claim, reply, "
                       "templates, release.", add_completion=False, no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

# Why the conversation refused (CommandResult.reason), in an operator's words.
REFUSALS = {
    "claimed_by_another": "another operator claimed this conversation first",
    "not_waiting": "this conversation is not waiting for a person",
    "not_claimed": "claim the conversation first",
    "not_your_conversation": "another operator has this conversation",
    "outside_24h_window": "the 24-hour window is closed: only a template can be sent",
    "opted_out": "the user opted out: nothing can be sent to them",
    "unknown_template": "the tenant has no such template",
    "missing_variables": "the template needs more variables (--var N=value)",
    "unknown_conversation": "there is no such conversation",
    "closed": "the conversation is closed",
    "empty_reply": "the reply is empty",
    "invalid_command": "the conversation did not understand the command",
    "wrong_tenant": "the conversation belongs to another tenant",
}
TICKS = {"sent": "✓", "queued": "✓", "delivered": "✓✓", "read": "✓✓ read",
         "received": "", "not_sent": "✗ not sent"}


@dataclass(frozen=True)
class Target:
    url: str
    key: str


def stack_env(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of the stack's env file (none if it does not exist)."""
    if not path.is_file():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


@app.callback()
def connect(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(envvar=URL_VAR, show_envvar=True,
                                            help="the operator API's base URL")] = None,
    key: Annotated[str | None, typer.Option(envvar=KEY_VAR, show_envvar=True,
                                            help="an operator key of the tenant")] = None,
    env_file: Annotated[Path, typer.Option(help="where `make run` writes the stack's "
                                                "settings")] = STACK_ENV,
) -> None:
    found = stack_env(env_file)
    url = url or found.get(URL_VAR)
    key = key or found.get(KEY_VAR)
    if not url or not key:
        raise _fail(f"the operator API's URL and key are needed: --url/--key, {URL_VAR}/"
                    f"{KEY_VAR}, or {env_file} (after `make run`)", 2)
    ctx.obj = Target(url.rstrip("/"), key)


# -- reading ------------------------------------------------------------------------------------
@app.command()
def queue(ctx: typer.Context) -> None:
    """Conversations waiting for a person (oldest first), then those an operator has."""
    items = _call(ctx, "GET", "/v1/operator/queue")["items"]
    if not items:
        console.print("Nobody is waiting for a person.")
        return
    table = Table(title="Operator queue")
    # The id is what the other commands take: never cut, whatever the terminal's width.
    table.add_column("conversation", no_wrap=True, min_width=34)
    for column in ("user", "mode", "operator", "since", "why"):
        table.add_column(column, overflow="fold")
    for c in items:
        table.add_row(c["conversation_id"], escape(c.get("user_address") or ""),
                      _mode(c), escape(c.get("operator_id") or ""),
                      _time(c.get("waiting_since")),
                      escape(" ".join(filter(None, (c.get("handoff_source"),
                                                    c.get("handoff_reason"))))))
    console.print(table)


@app.command()
def show(ctx: typer.Context,
         conversation_id: Annotated[str, typer.Argument(help="the conversation's id")]) -> None:
    """A conversation's latest messages, each outbound one with its delivery status."""
    found = _call(ctx, "GET", f"/v1/operator/conversations/{conversation_id}")
    c = found["conversation"]
    state = [c["status"], _mode(c)]
    if c.get("opted_out"):
        state.append("[red]opted out[/red]")
    state.append("window open" if c.get("window_open") else "window closed (templates only)")
    console.print(f"[bold]{escape(c.get('user_address') or conversation_id)}[/bold]  "
                  + " · ".join(state))
    table = Table(show_header=True)
    for column in ("time", "from", "message", "status"):
        table.add_column(column)
    for m in found["messages"]:
        table.add_row(_time(m["created_at"]), escape(_author(m)), escape(_body(m)),
                      TICKS.get(m["delivery_status"], m["delivery_status"]))
    console.print(table)


def _mode(c: dict[str, Any]) -> str:
    mode = c.get("mode") or "bot"
    return f"{mode} ({c['operator_id']})" if mode == "human" and c.get("operator_id") else mode


def _time(value: str | None) -> str:
    return (value or "")[:19].replace("T", " ")


def _author(m: dict[str, Any]) -> str:
    kind = m["kind"]
    if kind in ("operator", "template") and m.get("operator_id"):
        return f"{m['operator_id']} ({kind})"
    return str({"user": "user", "reply": "bot"}.get(kind, kind))


def _body(m: dict[str, Any]) -> str:
    lines = [m["text"]] if m.get("text") else []
    transcription = m.get("transcription")
    if transcription:
        lines.append(f"[voice] {transcription.get('text') or transcription['status']}")
    lines += [f"[media] {media['url']}" for media in m.get("media") or []]
    template = m.get("template")
    if template:
        variables = ", ".join(f"{k}={v}" for k, v in template.get("variables", {}).items())
        lines.append(f"[template {template.get('name')}] {variables}".rstrip())
    reply = m.get("reply") or {}
    if reply.get("handoff_reason"):
        lines.append(f"[handed to a person: {reply['handoff_reason']}]")
    return "\n".join(lines)


# -- commands -----------------------------------------------------------------------------------
ConversationId = Annotated[str, typer.Argument(help="the conversation's id")]
Variables = Annotated[list[str] | None, typer.Option(
    "--var", help="a template variable, N=value (repeat for each)")]


def _simple(name: str, done: str, what: str) -> None:
    def act(ctx: typer.Context, conversation_id: ConversationId) -> None:
        _command(ctx, f"/v1/operator/conversations/{conversation_id}/{name}", None, done)

    act.__doc__ = what
    app.command(name)(act)


_simple("claim", "claimed", "Claim a conversation waiting for a person.")
_simple("take-over", "taken over", "Take a conversation from the bot.")
_simple("release", "released to the bot", "Hand the conversation back to the bot.")
_simple("close", "closed", "Close the conversation.")


@app.command()
def reply(ctx: typer.Context, conversation_id: ConversationId,
          text: Annotated[str, typer.Argument(help="the message")],
          media_url: Annotated[str | None, typer.Option(help="one https:// media URL")] = None
          ) -> None:
    """Send the user a message (inside the 24-hour window)."""
    _command(ctx, f"/v1/operator/conversations/{conversation_id}/reply",
             {"text": text, "media_url": media_url}, "sent to the sender")


@app.command()
def template(ctx: typer.Context, conversation_id: ConversationId,
             name: Annotated[str, typer.Argument(help="the template's name")],
             var: Variables = None) -> None:
    """Send the user one of the tenant's approved templates (also outside the window)."""
    _command(ctx, f"/v1/operator/conversations/{conversation_id}/template",
             {"template": name, "variables": _variables(var)}, "template sent to the sender")


@app.command()
def notify(ctx: typer.Context,
           user_address: Annotated[str, typer.Argument(help="whatsapp:+E164 of the user")],
           name: Annotated[str, typer.Argument(help="the template's name")],
           var: Variables = None,
           business_address: Annotated[str | None, typer.Option(
               "--from", help="the tenant's number to send from (default: its first)")] = None
           ) -> None:
    """Send a user a template, business-initiated (refused if they opted out)."""
    _command(ctx, "/v1/templates/send",
             {"user_address": user_address, "template": name, "variables": _variables(var),
              "business_address": business_address}, "template sent to the sender")


def _variables(pairs: list[str] | None) -> dict[str, str]:
    variables = {}
    for pair in pairs or []:
        number, sep, value = pair.partition("=")
        if not sep or not number:
            raise _fail(f"--var takes N=value, not {pair!r}", 2)
        variables[number.strip()] = value
    return variables


def _command(ctx: typer.Context, path: str, body: dict[str, Any] | None, done: str) -> None:
    # One id per invocation; the conversation's events for it carry it as their
    # correlation_id, so `switchboard-trace <id>` shows the command's steps.
    command_id = uuid.uuid4().hex
    result = _call(ctx, "POST", path, body, {"Idempotency-Key": command_id})
    who = f" ({result['operator_id']})" if result.get("operator_id") else ""
    console.print(f"[green]{done}[/green]: mode {result.get('mode') or '?'}{who}; "
                  f"trace: switchboard-trace {command_id}")


# -- HTTP ---------------------------------------------------------------------------------------
def _call(ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> dict[str, Any]:
    target: Target = ctx.obj
    try:
        with httpx.Client(base_url=target.url, timeout=15.0,
                          headers={"Authorization": f"Bearer {target.key}"}) as client:
            response = client.request(method, path, json=body, headers=headers)
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {target.url}: {type(exc).__name__}", 3) from None
    if response.status_code == 200:
        answer: dict[str, Any] = response.json()
        return answer
    raise _refused(response)


def _refused(response: httpx.Response) -> typer.Exit:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = {}
    if status == 409:
        reason = body.get("reason") or "no reason given"
        return _fail(f"refused: {REFUSALS.get(reason, reason)} ({reason})", 1)
    if status == 404:
        return _fail("no such conversation for this key's tenant", 1)
    if status == 401:
        return _fail(f"the key was refused ({KEY_VAR} / --key)", 2)
    if status == 403:
        return _fail("this key may read but not act: an operator key is needed "
                     "(switchboard-tenants add-api-key --role operator --label <name>)", 2)
    if status == 422:
        problems = "; ".join(f"{'.'.join(map(str, e.get('loc', [])[1:]))}: {e.get('msg')}"
                             for e in body.get("detail", []) if isinstance(e, dict))
        return _fail(f"invalid: {problems or 'the request'}", 2)
    if status == 503:
        return _fail("the conversation service did not answer: nothing was done, try again", 3)
    return _fail(f"the operator API answered {status}", 3)


def _fail(message: str, code: int) -> typer.Exit:
    errors.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)
