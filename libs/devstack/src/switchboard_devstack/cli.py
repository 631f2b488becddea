"""``switchboard-dev``: run the local stack (``make run``)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from . import demo
from .embedded import NatsCluster
from .stack import Stack, bin_path, preferred_port

app = typer.Typer(help="Local development stack on embedded NATS and Postgres.",
                  no_args_is_help=True)
console = Console()


@app.callback()
def main() -> None:
    """Local development stack on embedded NATS and Postgres."""


def _compose(stack: Stack, tenant: demo.Demo, replicas: int) -> dict[str, str]:
    """Every process of the stack (``replicas`` of each service), and the settings scripts
    need to reach it."""
    gateway_port, sim_port = preferred_port(8080), preferred_port(8090)
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    sim_url = f"http://127.0.0.1:{sim_port}"
    # Twilio's retry overrides, exactly as an operator configures the real webhook URL.
    webhook = f"{gateway_url}/twilio/whatsapp/inbound#rc=3&rp=5xx,ct"
    sim_config = tenant.simulator_config(stack.root / "simulator.json", webhook)
    stack.add("twilio-sim", [bin_path("twilio-sim"), "--port", str(sim_port),
                             "--config", str(sim_config)], sim_port)
    # The simulator posts to the first gateway; more replicas listen on ports of their own.
    stack.add("gateway", [bin_path("switchboard-gateway")], gateway_port, replicas,
              PUBLIC_BASE_URL=gateway_url, SB_TENANT_KEYS=tenant.tenant_key,
              **stack.nats_credentials("gateway"))
    read_api_port = preferred_port(8085)
    for name, port, extra in (
        ("conversation", preferred_port(8081), {}),
        # No OPENAI_API_KEY in the environment: the agent's local development responder.
        ("agent", preferred_port(8082), {}),
        ("sender", preferred_port(8083),
         {"GATEWAY_PUBLIC_URL": gateway_url, "TWILIO_API_BASE_URL": sim_url}),
        # Voice notes are served by the simulator: its host is the one media host allowed.
        ("transcription", preferred_port(8084),
         {"MEDIA_ALLOWED_HOSTS": f"127.0.0.1:{sim_port}"}),
        ("projection", read_api_port, {}),
    ):
        stack.add(name, [bin_path(f"switchboard-{name}")], port, replicas,
                  SB_TENANT_KEYS=tenant.tenant_key, **extra, **stack.nats_credentials(name))
    read_api_url = f"http://127.0.0.1:{read_api_port}"
    return {
        # One node's URL, which every script's client takes (it learns the other nodes from it).
        "NATS_URL": stack.nats.url.split(",")[0],
        "DATABASE_URL": stack.postgres.url,
        "SB_TENANT_KEYS": tenant.tenant_key,
        "SB_GATEWAY_URL": gateway_url,
        "SB_WEBHOOK_URL": webhook,
        "SB_SIM_URL": sim_url,
        "SB_ACCOUNT_SID": demo.ACCOUNT_SID,
        "SB_AUTH_TOKEN": tenant.auth_token,
        "SB_CHAT_TO": demo.NUMBER,
        "SB_CHAT_FROM": demo.USER,
        "SB_READ_API_URL": read_api_url,
        "SB_API_KEY": tenant.api_key,
        # The operator API is the projection's (ADR 0022); switchboard-operator reads these.
        "SWITCHBOARD_OPERATOR_URL": read_api_url,
        "SWITCHBOARD_OPERATOR_KEY": tenant.operator_key,
    }


@app.command()
def run(
    state: Annotated[Path, typer.Option(help="where data and logs are kept")] = Path(".run"),
    cluster: Annotated[bool, typer.Option(
        envvar="SB_DEV_NATS_CLUSTER", help="a 3-node NATS JetStream cluster, R3 streams")] = False,
    replicas: Annotated[int, typer.Option(
        envvar="SB_DEV_REPLICAS", min=1, help="processes per service")] = 1,
    nats_auth: Annotated[bool, typer.Option(
        envvar="SB_DEV_NATS_AUTH",
        help="one NATS user per service with its subject permissions, as in production "
             "(deploy/nats/permissions.conf); tools without credentials are the operator")] = True,
) -> None:
    """Start NATS, Postgres, the Twilio simulator and every service; a process that dies is
    restarted; Ctrl-C stops them all."""
    stack = Stack.prepare(state.resolve(), cluster=cluster, auth=nats_auth)
    stopping = {"now": False}

    def request_stop(*_: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        console.print("[bold]Starting Switchboard[/bold] on embedded NATS and Postgres...")
        stack.start_servers()
        for name, value in stack.replica_settings.items():  # for the tenant bucket made here
            os.environ.setdefault(name, value)
        tenant = demo.Demo.load_or_create(stack.root)
        asyncio.run(tenant.register(stack.postgres.url, stack.nats.url))
        settings = _compose(stack, tenant, replicas)
        stack.start_processes()
        env_file = stack.root / "stack.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        env_file.chmod(0o600)
        _announce(stack, settings, env_file)
        stack.supervise(lambda: stopping["now"])
    finally:
        console.print("Stopping...")
        stack.stop()
        console.print("Stopped.")


def _announce(stack: Stack, settings: dict[str, str], env_file: Path) -> None:
    nodes = stack.nats.nodes if isinstance(stack.nats, NatsCluster) else [stack.nats]
    for node in nodes:
        console.print(f"  NATS JetStream   {node.url} {node.name} "
                      f"(monitoring http://127.0.0.1:{node.monitor_port})")
    console.print(f"  Postgres         {stack.postgres.url}")
    for process in stack.processes:
        console.print(f"  {process.label:<16} {process.url}")
    console.print(f"  webhook (as configured in the simulator): {settings['SB_WEBHOOK_URL']}")
    console.print(f"  demo tenant: number {settings['SB_CHAT_TO']}, "
                  f"account {settings['SB_ACCOUNT_SID']}")
    console.print(f"  settings for scripts: {env_file}; logs: {stack.root / 'logs'}")
    llm = ("OpenAI (OPENAI_API_KEY is set)" if os.environ.get("OPENAI_API_KEY")
           else "the local development responder (set OPENAI_API_KEY for a real LLM)")
    console.print(f"  replies come from {llm}")
    console.print(f"  read API: {settings['SB_READ_API_URL']}/docs, with the demo tenant's key: "
                  "[cyan]-H \"X-API-Key: $SB_API_KEY\"[/cyan] (from the settings file); "
                  "[cyan]make trace CID=<sid>[/cyan] draws the journey of a message the chat sent")
    # The key rides in the fragment: the browser never sends it to a server or a log; the
    # page keeps it in the tab's sessionStorage and takes it out of the address bar.
    operator_url, operator_key = (settings["SWITCHBOARD_OPERATOR_URL"],
                                  settings["SWITCHBOARD_OPERATOR_KEY"])
    inbox = f"{operator_url}/inbox#key={operator_key}"
    console.print(f"  operator inbox (logged in as {demo.OPERATOR}): {inbox}", soft_wrap=True)
    console.print("  operator CLI: [cyan].venv/bin/switchboard-operator queue[/cyan] "
                  "(then show, claim, reply, template, release; it reads the settings file)")
    console.print("[green]Ready.[/green] In another terminal: [cyan]make chat[/cyan] "
                  "(or: [cyan]make chat MESSAGE='hello'[/cyan] for one message). "
                  "Ctrl-C here stops everything.")
