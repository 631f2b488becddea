"""``switchboard-tenants``: manage tenants in Postgres and publish them to the KV directory.

Every write goes to Postgres first, then to the directory every replica watches. Tokens are
never printed; an API key is printed once, when it is made.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar, cast, get_args

import asyncpg
import nats
import nats.errors
import psycopg
import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from switchboard_runtime.config import ConfigError, NatsUser
from switchboard_runtime.telemetry import configure_logging

from .crypto import TokenCipher, generate_key
from .kv import DirectoryPublisher, open_bucket
from .models import (
    DEFAULT_LANGUAGE,
    DEFAULT_MODEL,
    DEFAULT_SYSTEM_PROMPT,
    ApiKeyRole,
    NewTenant,
    Template,
    TenantRecord,
    TenantUpdate,
    slugify,
)
from .repository import ApiKeyInfo, TenantRepository, fetch_api_keys, fetch_tenants
from .schema import apply_migrations

T = TypeVar("T")

TOKEN_ENV = "TWILIO_AUTH_TOKEN"  # noqa: S105 - the variable's name, not a secret
LLM_KEY_ENV = "TENANT_LLM_API_KEY"
WEBHOOK_SECRET_ENV = "TENANT_WEBHOOK_SECRET"  # noqa: S105 - the variable's name

app = typer.Typer(help="Manage Switchboard tenants.", no_args_is_help=True)
console = Console()
errors = Console(stderr=True)

DatabaseUrl = Annotated[
    str, typer.Option(envvar="DATABASE_URL", help="Postgres URL (postgresql://...)")
]
NatsUrl = Annotated[str, typer.Option(envvar="NATS_URL", help="NATS server URL")]
TenantIdArg = Annotated[str, typer.Argument(help="tenant id")]
DEFAULT_NATS = "nats://127.0.0.1:4222"


@app.callback()
def _configure() -> None:
    # JSON logs on stderr, so stdout stays the command's own output.
    configure_logging("switchboard-tenants", os.environ.get("LOG_LEVEL", "WARNING"))


def _fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[red]{escape(message)}[/red]")
    return typer.Exit(code)


def _describe(exc: ValidationError) -> str:
    # Without the input values: they may be tokens or phone numbers.
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}"
        for e in exc.errors(include_input=False, include_url=False)
    )


def _secret(env: str, prompt: str) -> SecretStr:
    # Never from argv: the command line is visible to every user of the machine (ps).
    return SecretStr(os.environ.get(env) or typer.prompt(prompt, hide_input=True))


def _words(value: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")``; ``""`` -> ``()``."""
    return tuple(word.strip() for word in value.split(",") if word.strip())


async def _read(database_url: str, query: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Read straight from Postgres: no key, no NATS needed."""
    conn = await asyncpg.connect(database_url)
    try:
        return await query(conn)
    finally:
        await conn.close()


def _run(work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except ValidationError as exc:
        raise _fail(_describe(exc), 2) from None
    except (ConfigError, LookupError, ValueError) as exc:  # incl. conflicts, bad keys
        raise _fail(str(exc)) from None
    except (nats.errors.Error, TimeoutError) as exc:
        raise _fail(
            f"NATS failed ({type(exc).__name__}); a change already saved in Postgres reaches "
            "the directory with `switchboard-tenants sync`"
        ) from None
    except (OSError, asyncpg.PostgresError) as exc:
        raise _fail(f"database: {type(exc).__name__}: {exc}") from None


def _with_repo(
    database_url: str, nats_url: str, work: Callable[[TenantRepository], Awaitable[T]]
) -> T:
    try:
        cipher = TokenCipher.from_env()
    except ConfigError as exc:
        raise _fail(str(exc)) from None

    async def main() -> T:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3,
                                    **NatsUser().nats_connect_options())
            try:
                publisher = DirectoryPublisher(await open_bucket(nc.jetstream()))
                return await work(TenantRepository(pool, cipher, publisher))
            finally:
                await nc.drain()
        finally:
            await pool.close()

    return _run(main())


@app.command()
def migrate(database_url: DatabaseUrl) -> None:
    """Apply the tenants schema migrations."""
    try:
        count = apply_migrations(database_url)
    except psycopg.Error as exc:
        raise _fail(f"database: {type(exc).__name__}: {exc}") from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    console.print(f"{count} migration(s) applied")


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="display name")],
    account_sid: Annotated[str, typer.Option(help="Twilio AccountSid (AC...)")],
    database_url: DatabaseUrl,
    auth_token: Annotated[str, typer.Option(
        envvar=TOKEN_ENV, prompt="Twilio auth token", hide_input=True,
        help=f"Twilio auth token; prefer the prompt or {TOKEN_ENV} (argv is visible in ps)",
    )],
    tenant_id: Annotated[str | None, typer.Option(help="id (default: from the name)")] = None,
    number: Annotated[list[str] | None, typer.Option(
        "--number", help="WhatsApp number, whatsapp:+E164 or +E164 (repeatable)")] = None,
    messaging_service: Annotated[list[str] | None, typer.Option(
        "--messaging-service", help="Messaging Service sid MG... (repeatable)")] = None,
    system_prompt: str = DEFAULT_SYSTEM_PROMPT,
    model: str = DEFAULT_MODEL,
    language: Annotated[str, typer.Option(help="BCP-47 language, e.g. en")] = DEFAULT_LANGUAGE,
    llm_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint")] = None,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Add a tenant with its numbers, then publish it."""
    try:
        tenant = NewTenant(
            tenant_id=tenant_id or slugify(name), name=name, account_sid=account_sid,
            auth_token=SecretStr(auth_token), numbers=tuple(number or ()),
            messaging_services=tuple(messaging_service or ()), system_prompt=system_prompt,
            model=model, language=language, llm_base_url=llm_base_url,
        )
    except ValidationError as exc:
        raise _fail(_describe(exc), 2) from None
    record = _with_repo(database_url, nats_url, lambda repo: repo.add(tenant))
    console.print(
        f"added tenant [bold]{escape(record.tenant_id)}[/bold] with {len(record.numbers)} "
        f"number(s) and {len(record.messaging_services)} Messaging Service(s)"
    )


@app.command("list")
def list_cmd(database_url: DatabaseUrl) -> None:
    """List tenants (tokens are never shown)."""

    async def main(conn: asyncpg.Connection) -> tuple[list[TenantRecord], list[ApiKeyInfo]]:
        return await fetch_tenants(conn), await fetch_api_keys(conn)

    records, keys = _run(_read(database_url, main))
    table = Table("tenant", "name", "account", "numbers", "messaging services", "model",
                  "language", "handoff", "webhook", "api keys (role: label)", "updated")
    for r in records:
        table.add_row(
            escape(r.tenant_id), escape(r.name), r.account_sid, "\n".join(r.numbers),
            "\n".join(r.messaging_services), escape(r.model), escape(r.language),
            _handoff(r), escape(r.webhook_url or "-"),
            "\n".join(escape(f"{k.role}: {k.label or '-'}") for k in keys
                      if k.tenant_id == r.tenant_id),
            r.updated_at.isoformat(timespec="seconds"),
        )
    console.print(table)
    console.print(f"{len(records)} tenant(s)")


def _handoff(record: TenantRecord) -> str:
    deadline = f"{record.handoff_deadline_s}s" if record.handoff_deadline_s else "never"
    return f"expires {deadline}, then {record.handoff_unclaimed}"


@app.command()
def update(
    tenant_id: TenantIdArg,
    database_url: DatabaseUrl,
    name: str | None = None,
    account_sid: str | None = None,
    set_auth_token: Annotated[bool, typer.Option(
        "--set-auth-token", help=f"replace the auth token (from {TOKEN_ENV} or a prompt)")] = False,
    system_prompt: str | None = None,
    model: str | None = None,
    language: str | None = None,
    llm_base_url: Annotated[str | None, typer.Option(help='"" clears it')] = None,
    set_llm_api_key: Annotated[bool, typer.Option(
        "--llm-api-key", help=f"set the tenant's own LLM API key (from {LLM_KEY_ENV} or a prompt)",
    )] = False,
    clear_llm_api_key: Annotated[bool, typer.Option(
        "--clear-llm-api-key", help="drop the tenant's own LLM API key")] = False,
    webhook_url: Annotated[str | None, typer.Option(
        help='https URL for handoff notifications; "" removes the webhook')] = None,
    set_webhook_secret: Annotated[bool, typer.Option(
        "--webhook-secret",
        help=f"set the webhook signing secret (from {WEBHOOK_SECRET_ENV} or a prompt)")] = False,
    handoff_deadline: Annotated[int | None, typer.Option(
        help="seconds an unclaimed handoff waits (0: forever)")] = None,
    handoff_unclaimed: Annotated[str | None, typer.Option(
        help="after the deadline: bot (the bot answers again) or wait")] = None,
    handoff_keywords: Annotated[str | None, typer.Option(
        help='words asking for a person, comma-separated, beside the defaults ("" none)')] = None,
    opt_out_keywords: Annotated[str | None, typer.Option(
        help="words that opt out, beside STOP and the language's defaults")] = None,
    opt_in_keywords: Annotated[str | None, typer.Option(
        help="words that opt back in, beside START and the language's defaults")] = None,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Change a tenant's settings or secrets, then publish it."""
    given: dict[str, object] = {
        key: value for key, value in {
            "name": name, "account_sid": account_sid, "system_prompt": system_prompt,
            "model": model, "language": language,
        }.items() if value is not None
    }
    if llm_base_url is not None:
        given["llm_base_url"] = llm_base_url or None
    for key, words in (("handoff_keywords", handoff_keywords),
                       ("opt_out_keywords", opt_out_keywords),
                       ("opt_in_keywords", opt_in_keywords)):
        if words is not None:
            given[key] = _words(words)
    if handoff_deadline is not None:
        given["handoff_deadline_s"] = handoff_deadline
    if handoff_unclaimed is not None:
        given["handoff_unclaimed"] = handoff_unclaimed
    if webhook_url is not None:
        given["webhook_url"] = webhook_url or None
    if set_llm_api_key and clear_llm_api_key:
        raise _fail("give --llm-api-key or --clear-llm-api-key, not both", 2)
    if clear_llm_api_key:
        given["llm_api_key"] = None
    if set_auth_token:
        given["auth_token"] = _secret(TOKEN_ENV, "Twilio auth token")
    if set_llm_api_key:
        given["llm_api_key"] = _secret(LLM_KEY_ENV, "LLM API key")
    if set_webhook_secret:
        given["webhook_secret"] = _secret(WEBHOOK_SECRET_ENV, "webhook secret")
    if not given:
        raise _fail("nothing to update: give at least one option", 2)
    try:
        changes = TenantUpdate.model_validate(given)
    except ValidationError as exc:
        raise _fail(_describe(exc), 2) from None
    _with_repo(database_url, nats_url, lambda repo: repo.update(tenant_id, changes))
    console.print(f"updated {escape(tenant_id)}: {', '.join(sorted(given))}")


@app.command()
def remove(
    tenant_id: TenantIdArg,
    database_url: DatabaseUrl,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Remove a tenant, its numbers and API keys; its messages become orphaned."""
    if not yes:
        typer.confirm(f"remove tenant {tenant_id}?", abort=True)
    _with_repo(database_url, nats_url, lambda repo: repo.remove(tenant_id))
    console.print(f"removed {escape(tenant_id)}")


@app.command("add-number")
def add_number(
    tenant_id: TenantIdArg,
    address: Annotated[str, typer.Argument(help="whatsapp:+E164 or +E164")],
    database_url: DatabaseUrl,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Give a tenant one more WhatsApp number."""
    record = _with_repo(database_url, nats_url, lambda repo: repo.add_number(tenant_id, address))
    console.print(f"{escape(tenant_id)} now has {len(record.numbers)} number(s)")


@app.command("remove-number")
def remove_number(
    tenant_id: TenantIdArg,
    address: Annotated[str, typer.Argument(help="whatsapp:+E164 or +E164")],
    database_url: DatabaseUrl,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Take a WhatsApp number from a tenant."""
    record = _with_repo(
        database_url, nats_url, lambda repo: repo.remove_number(tenant_id, address)
    )
    console.print(f"{escape(tenant_id)} now has {len(record.numbers)} number(s)")


@app.command("add-messaging-service")
def add_messaging_service(
    tenant_id: TenantIdArg,
    sid: Annotated[str, typer.Argument(help="Messaging Service sid (MG...)")],
    database_url: DatabaseUrl,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Route a Messaging Service to a tenant."""
    record = _with_repo(
        database_url, nats_url, lambda repo: repo.add_messaging_service(tenant_id, sid)
    )
    console.print(
        f"{escape(tenant_id)} now has {len(record.messaging_services)} Messaging Service(s)"
    )


@app.command("remove-messaging-service")
def remove_messaging_service(
    tenant_id: TenantIdArg,
    sid: Annotated[str, typer.Argument(help="Messaging Service sid (MG...)")],
    database_url: DatabaseUrl,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Stop routing a Messaging Service to a tenant."""
    record = _with_repo(
        database_url, nats_url, lambda repo: repo.remove_messaging_service(tenant_id, sid)
    )
    console.print(
        f"{escape(tenant_id)} now has {len(record.messaging_services)} Messaging Service(s)"
    )


@app.command("add-template")
def add_template(
    tenant_id: TenantIdArg,
    name: Annotated[str, typer.Argument(help="the template's name, e.g. appointment_reminder")],
    content_sid: Annotated[str, typer.Option(help="the approved Content template's sid (HX...)")],
    database_url: DatabaseUrl,
    language: Annotated[str, typer.Option(help="BCP-47 language, e.g. en")] = DEFAULT_LANGUAGE,
    variables: Annotated[str, typer.Option(
        help="its variables, comma-separated, e.g. 1,2 (Twilio's ContentVariables keys)")] = "",
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Register an approved WhatsApp template the tenant may send outside the 24-hour window."""
    try:
        template = Template(name=name, content_sid=content_sid, language=language,
                            variables=_words(variables))
    except ValidationError as exc:
        raise _fail(_describe(exc), 2) from None
    record = _with_repo(database_url, nats_url, lambda repo: repo.add_template(tenant_id, template))
    console.print(f"{escape(tenant_id)} now has {len(record.templates)} template(s)")


@app.command("remove-template")
def remove_template(
    tenant_id: TenantIdArg,
    name: Annotated[str, typer.Argument(help="the template's name")],
    database_url: DatabaseUrl,
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Remove one of the tenant's templates."""
    record = _with_repo(database_url, nats_url, lambda repo: repo.remove_template(tenant_id, name))
    console.print(f"{escape(tenant_id)} now has {len(record.templates)} template(s)")


@app.command("list-templates")
def list_templates(tenant_id: TenantIdArg, database_url: DatabaseUrl) -> None:
    """List the tenant's templates."""
    records = _run(_read(database_url, lambda conn: fetch_tenants(conn, tenant_id)))
    if not records:
        raise _fail(f"no tenant {tenant_id}")
    table = Table("name", "content sid", "language", "variables")
    for t in records[0].templates:
        table.add_row(escape(t.name), t.content_sid, escape(t.language), ", ".join(t.variables))
    console.print(table)
    console.print(f"{len(records[0].templates)} template(s)")


@app.command("add-api-key")
def add_api_key(
    tenant_id: TenantIdArg,
    database_url: DatabaseUrl,
    label: Annotated[str, typer.Option(
        help="what the key is for; for an operator key, the operator's name")] = "",
    role: Annotated[str, typer.Option(
        help="reader (the read API) or operator (also acts on conversations)")] = "reader",
    nats_url: NatsUrl = DEFAULT_NATS,
) -> None:
    """Make an API key for a tenant; it is printed once and stored only as a hash."""
    if role not in get_args(ApiKeyRole):
        raise _fail("--role must be reader or operator", 2)
    key = _with_repo(
        database_url, nats_url,
        lambda repo: repo.add_api_key(tenant_id, label, cast(ApiKeyRole, role)),
    )
    errors.print(f"{role} key made; it is shown once, store it now:")
    console.print(key, markup=False, highlight=False)


@app.command("rotate-keys")
def rotate_keys(database_url: DatabaseUrl, nats_url: NatsUrl = DEFAULT_NATS) -> None:
    """Re-encrypt every secret (auth tokens, LLM keys, webhook secrets) with the primary
    (first) key, then republish."""
    count = _with_repo(database_url, nats_url, lambda repo: repo.rotate_all_tokens())
    console.print(f"re-encrypted {count} secret(s); keys after the first can now be retired")


@app.command("generate-key")
def generate_key_cmd() -> None:
    """Print a new Fernet key for SB_TENANT_KEYS."""
    console.print(generate_key(), markup=False, highlight=False)


@app.command()
def sync(database_url: DatabaseUrl, nats_url: NatsUrl = DEFAULT_NATS) -> None:
    """Republish the whole KV directory from Postgres (removes stale keys)."""
    changed = _with_repo(database_url, nats_url, lambda repo: repo.publish_all())
    console.print(f"directory in sync ({changed} key(s) changed)")
