-- depends: projection_0001_read_models
-- Twilio's status callbacks belong to the tenant whose callback reported them: keyed by
-- (tenant, MessageSid, status), so a callback of one tenant naming another tenant's sid is
-- stored under its own tenant and never read as the other's (reads join parts by tenant).
-- Rows without a tenant could not be scoped: they go (a rebuild restores what is valid).
DELETE FROM delivery_statuses WHERE tenant_id IS NULL;
ALTER TABLE delivery_statuses DROP CONSTRAINT delivery_statuses_pkey;
ALTER TABLE delivery_statuses ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE delivery_statuses ADD PRIMARY KEY (tenant_id, message_sid, status);
-- A part's sid against the statuses of every tenant (a status naming another tenant's part
-- is counted: readmodels/parts.py).
CREATE INDEX delivery_statuses_sid ON delivery_statuses (message_sid);
