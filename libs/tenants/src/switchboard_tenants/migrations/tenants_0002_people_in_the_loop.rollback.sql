ALTER TABLE tenant_api_keys DROP COLUMN role;
DROP TABLE tenant_templates;
ALTER TABLE tenants
    DROP CONSTRAINT tenants_webhook_has_secret,
    DROP COLUMN webhook_secret_encrypted,
    DROP COLUMN webhook_url,
    DROP COLUMN handoff_unclaimed,
    DROP COLUMN handoff_deadline_s,
    DROP COLUMN opt_in_keywords,
    DROP COLUMN opt_out_keywords,
    DROP COLUMN handoff_keywords,
    DROP COLUMN llm_api_key_encrypted;
