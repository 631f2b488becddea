"""The demo tenant ``make run`` creates once and keeps in ``.run/``: an encryption key, a
Twilio account and token for the simulator, one WhatsApp number, a read-API key and an
operator's key (for the inbox page and ``switchboard-operator``)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import nats
from switchboard_tenants import (
    DirectoryPublisher,
    NewTenant,
    TenantRepository,
    TokenCipher,
    apply_migrations,
    generate_key,
    open_bucket,
)
from switchboard_tenants.models import Template

ACCOUNT_SID = "AC" + "0" * 31 + "1"
NUMBER = "whatsapp:+14155550100"
USER = "whatsapp:+14155550101"
TENANT_ID = "demo"
OPERATOR = "demo-operator"  # the demo operator's name: its key's label, operator_id in events
# An approved template of the demo account (in the simulator and registered for the tenant),
# so operators can try what goes outside the 24-hour window.
TEMPLATE = Template(name="appointment_reminder", content_sid="HX" + "0" * 31 + "1",
                    language="en", variables=("1",))
TEMPLATE_BODY = "Hello! This is a reminder of your appointment on {{1}}."


@dataclass
class Demo:
    path: Path
    tenant_key: str
    auth_token: str
    api_key: str = ""
    operator_key: str = ""

    @classmethod
    def load_or_create(cls, root: Path) -> Demo:
        path = root / "demo.json"
        if path.exists():
            data = json.loads(path.read_text())
            return cls(path, data["tenant_key"], data["auth_token"], data.get("api_key", ""),
                       data.get("operator_key", ""))
        demo = cls(path, generate_key(), secrets.token_hex(16))
        demo.save()
        return demo

    def save(self) -> None:
        self.path.write_text(json.dumps({"tenant_key": self.tenant_key,
                                         "auth_token": self.auth_token,
                                         "api_key": self.api_key,
                                         "operator_key": self.operator_key}))
        self.path.chmod(0o600)

    async def register(self, database_url: str, nats_url: str) -> None:
        """Migrate, add the demo tenant, its read-API key and its operator's key if missing,
        and publish the tenant directory."""
        apply_migrations(database_url)
        cipher = TokenCipher([self.tenant_key])
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        nc = await nats.connect(nats_url.split(","))  # a cluster: every node's URL
        try:
            publisher = DirectoryPublisher(await open_bucket(nc.jetstream()))
            tenants = TenantRepository(pool, cipher, publisher)
            if await tenants.get(TENANT_ID) is None:
                await tenants.add(NewTenant(
                    tenant_id=TENANT_ID, name="Demo clinic", account_sid=ACCOUNT_SID,
                    auth_token=self.auth_token, numbers=[NUMBER],
                    system_prompt="You are the friendly assistant of a dental clinic. Be brief.",
                ))
            tenant = await tenants.get(TENANT_ID)
            if tenant is not None and tenant.template(TEMPLATE.name) is None:
                await tenants.add_template(TENANT_ID, TEMPLATE)
            if not self.api_key or await tenants.tenant_for_api_key(self.api_key) is None:
                self.api_key = await tenants.add_api_key(TENANT_ID, "make run")
                self.save()
            if not self.operator_key or await tenants.api_key(self.operator_key) is None:
                self.operator_key = await tenants.add_api_key(TENANT_ID, OPERATOR,
                                                              role="operator")
                self.save()
            await tenants.publish_all()
        finally:
            await nc.close()
            await pool.close()

    def simulator_config(self, path: Path, webhook_url: str) -> Path:
        path.write_text(json.dumps({
            "accounts": [{"sid": ACCOUNT_SID, "auth_token": self.auth_token}],
            "numbers": [{"address": NUMBER, "account_sid": ACCOUNT_SID,
                         "webhook_url": webhook_url}],
            "templates": [{"sid": TEMPLATE.content_sid, "account_sid": ACCOUNT_SID,
                           "friendly_name": TEMPLATE.name, "body": TEMPLATE_BODY}],
            # Free text more than 24 h after the user's last message fails with 63016.
            "enforce_window": True,
        }, indent=2))
        return path
