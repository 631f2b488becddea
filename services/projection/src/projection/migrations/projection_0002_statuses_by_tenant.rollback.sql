-- Back to one row per (MessageSid, status): the earliest report of each is kept.
DROP INDEX delivery_statuses_sid;
ALTER TABLE delivery_statuses DROP CONSTRAINT delivery_statuses_pkey;
DELETE FROM delivery_statuses d USING delivery_statuses e
WHERE d.message_sid = e.message_sid AND d.status = e.status
  AND (d.reported_at, d.tenant_id) > (e.reported_at, e.tenant_id);
ALTER TABLE delivery_statuses ALTER COLUMN tenant_id DROP NOT NULL;
ALTER TABLE delivery_statuses ADD PRIMARY KEY (message_sid, status);
