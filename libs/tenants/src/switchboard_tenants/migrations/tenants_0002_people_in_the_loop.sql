-- depends: tenants_0001_initial
-- People in the loop (issue 12, ADR 0022): a tenant's own LLM key, its handoff and opt-out
-- settings, its outgoing webhook, its approved WhatsApp templates, and operator API keys.
-- The LLM key and the webhook secret are stored only Fernet-encrypted, like the auth token.

ALTER TABLE tenants
    ADD COLUMN llm_api_key_encrypted    text,
    ADD COLUMN handoff_keywords         text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN opt_out_keywords         text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN opt_in_keywords          text[]  NOT NULL DEFAULT '{}',
    ADD COLUMN handoff_deadline_s       integer NOT NULL DEFAULT 900
        CHECK (handoff_deadline_s >= 0),
    ADD COLUMN handoff_unclaimed        text    NOT NULL DEFAULT 'bot'
        CHECK (handoff_unclaimed IN ('bot', 'wait')),
    ADD COLUMN webhook_url              text,
    ADD COLUMN webhook_secret_encrypted text,
    -- A webhook that cannot be signed is never sent.
    ADD CONSTRAINT tenants_webhook_has_secret
        CHECK (webhook_url IS NULL OR webhook_secret_encrypted IS NOT NULL);

CREATE TABLE tenant_templates (
    tenant_id   text NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,99}$'),
    content_sid text NOT NULL CHECK (content_sid ~ '^HX[0-9a-f]{32}$'),
    language    text NOT NULL,
    variables   text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tenant_templates_pkey PRIMARY KEY (tenant_id, name)
);

-- 'reader' keys read the API; 'operator' keys also act on conversations, as the operator
-- named by the key's label.
ALTER TABLE tenant_api_keys
    ADD COLUMN role text NOT NULL DEFAULT 'reader' CHECK (role IN ('reader', 'operator'));
