-- depends: projection_0002_statuses_by_tenant
-- People in the loop (issue 12, ADR 0022): each conversation's mode and opt-out, and the
-- messages the conversation itself asked the sender for (notices, operators' messages,
-- templates) beside the bot's replies.
--
-- A conversation's state is the latest of its events that set it: each group of columns
-- comes with the CONVERSATION stream sequence of the event that set it (*_seq), and a fact
-- with a higher sequence wins, whatever order the events were projected in (the sequence is
-- the aggregate's own order: appends are checked against it).
ALTER TABLE conversations
    ADD COLUMN mode               text,         -- bot, waiting, human (NULL: bot)
    ADD COLUMN operator_id        text,         -- who answers (mode human)
    ADD COLUMN mode_seq           bigint,
    ADD COLUMN waiting_since      timestamptz,  -- the current handoff's request
    ADD COLUMN handoff_source     text,         -- user, agent, operator
    ADD COLUMN handoff_reason     text,
    ADD COLUMN handoff_seq        bigint,
    ADD COLUMN handoff_expired_at timestamptz,  -- latest deadline passed unclaimed
    ADD COLUMN opted_out          boolean,
    ADD COLUMN opted_out_at       timestamptz,
    ADD COLUMN opt_seq            bigint;
-- The operator queue: a tenant's conversations waiting for a person, oldest first.
CREATE INDEX conversations_tenant_mode
    ON conversations (tenant_id, mode, waiting_since) WHERE mode IN ('waiting', 'human');

ALTER TABLE messages
    ADD COLUMN kind              text,   -- notice, operator, template (NULL: user or bot reply)
    ADD COLUMN purpose           text,   -- handoff_requested, operator_reply, template ...
    ADD COLUMN operator_id       text,
    ADD COLUMN template_name     text,
    ADD COLUMN content_sid       text,
    ADD COLUMN content_variables jsonb,
    ADD COLUMN handoff_reason    text;   -- a bot reply withheld: the LLM handed the turn off
