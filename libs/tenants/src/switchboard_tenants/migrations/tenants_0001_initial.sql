-- Tenants, the WhatsApp numbers and Messaging Services they own, and their read-API keys.
-- The Twilio auth token is stored only Fernet-encrypted; API keys only as SHA-256 hashes.

CREATE TABLE tenants (
    tenant_id            text PRIMARY KEY,
    name                 text NOT NULL,
    account_sid          text NOT NULL CHECK (account_sid ~ '^AC[0-9a-f]{32}$'),
    auth_token_encrypted text NOT NULL,
    system_prompt        text NOT NULL,
    model                text NOT NULL,
    language             text NOT NULL,
    llm_base_url         text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenant_numbers (
    address   text PRIMARY KEY CHECK (address ~ '^whatsapp:\+[1-9][0-9]{6,14}$'),
    tenant_id text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
CREATE INDEX tenant_numbers_tenant_id ON tenant_numbers (tenant_id);

CREATE TABLE tenant_messaging_services (
    sid       text PRIMARY KEY CHECK (sid ~ '^MG[0-9a-f]{32}$'),
    tenant_id text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE
);
CREATE INDEX tenant_messaging_services_tenant_id ON tenant_messaging_services (tenant_id);

CREATE TABLE tenant_api_keys (
    key_hash   text PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    label      text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenant_api_keys_tenant_id ON tenant_api_keys (tenant_id);
