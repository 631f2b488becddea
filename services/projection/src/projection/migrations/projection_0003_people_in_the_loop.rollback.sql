DROP INDEX conversations_tenant_mode;
ALTER TABLE messages
    DROP COLUMN kind, DROP COLUMN purpose, DROP COLUMN operator_id, DROP COLUMN template_name,
    DROP COLUMN content_sid, DROP COLUMN content_variables, DROP COLUMN handoff_reason;
ALTER TABLE conversations
    DROP COLUMN mode, DROP COLUMN operator_id, DROP COLUMN mode_seq, DROP COLUMN waiting_since,
    DROP COLUMN handoff_source, DROP COLUMN handoff_reason, DROP COLUMN handoff_seq,
    DROP COLUMN handoff_expired_at, DROP COLUMN opted_out, DROP COLUMN opted_out_at,
    DROP COLUMN opt_seq;
