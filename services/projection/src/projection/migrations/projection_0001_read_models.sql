-- The projection's read models, built from the streams (and rebuildable from them), and its
-- checkpoints. Every column is merged so that the order events arrive in does not matter:
-- see the merge rule beside each column in projection/readmodels/*.py.

-- Position per stream, written in the same transaction as the read models.
CREATE TABLE projection_checkpoints (
    stream     text PRIMARY KEY,
    last_seq   bigint NOT NULL,                -- last stream sequence taken into account
    processed  bigint NOT NULL DEFAULT 0,      -- stream messages taken into account, each once
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row. A rebuild bumps the epoch: a batch fetched before it cannot commit after it.
CREATE TABLE projection_state (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    epoch      bigint NOT NULL DEFAULT 0,
    rebuilt_at timestamptz
);
INSERT INTO projection_state DEFAULT VALUES;

CREATE TABLE conversations (
    conversation_id      text PRIMARY KEY,
    tenant_id            text,
    user_address         text,
    business_address     text,
    account_sid          text,
    session              integer,            -- latest session started
    closed_session       integer,            -- latest session closed
    status               text GENERATED ALWAYS AS (
        CASE WHEN closed_session IS NOT NULL AND closed_session >= coalesce(session, 0)
             THEN 'closed' ELSE 'open' END) STORED,
    started_at           timestamptz,
    closed_at            timestamptz,
    close_reason         text,
    last_user_message_at timestamptz,
    window_expires_at    timestamptz,         -- WhatsApp's 24-hour customer-service window
    turns                integer,
    user_messages        integer NOT NULL DEFAULT 0,  -- counted from messages, per batch
    assistant_messages   integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX conversations_tenant_updated
    ON conversations (tenant_id, updated_at DESC, conversation_id DESC);

-- Inbound: one row per WhatsApp message (id = its MessageSid). Outbound: one row per reply
-- (id = the ReplyGenerated event id), its parts in message_parts.
CREATE TABLE messages (
    message_id           text PRIMARY KEY,
    tenant_id            text,
    conversation_id      text,
    correlation_id       text,
    direction            text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    turn                 integer,
    text                 text,
    media                jsonb,
    message_type         text,
    profile_name         text,
    from_address         text,
    to_address           text,
    account_sid          text,
    received_at          timestamptz,
    transcription_status text,
    transcription_rank   smallint,
    transcript           text,
    transcript_language  text,
    transcription_error  text,
    audio_duration_s     double precision,
    transcription_model  text,
    generated_at         timestamptz,
    model                text,
    fallback             boolean,
    fallback_reason      text,
    prompt_tokens        integer,
    completion_tokens    integer,
    llm_latency_ms       double precision,
    parts                integer,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    search               tsvector GENERATED ALWAYS AS (
        to_tsvector('simple'::regconfig, coalesce(text, '') || ' ' || coalesce(transcript, ''))
    ) STORED
);
CREATE INDEX messages_conversation ON messages (conversation_id, created_at, message_id);
CREATE INDEX messages_search ON messages USING gin (search);

CREATE TABLE message_parts (
    message_id       text NOT NULL,
    part             integer NOT NULL,
    tenant_id        text,
    conversation_id  text,
    correlation_id   text,
    text             text,
    twilio_sid       text,
    send_status      text,                   -- the sender's record: accepted, attempted, sent, failed
    send_rank        smallint,
    attempts         integer,
    failure_reason   text,
    error_code       text,
    retryable        boolean,
    accepted_at      timestamptz,
    first_attempt_at timestamptz,
    last_attempt_at  timestamptz,
    sent_at          timestamptz,
    failed_at        timestamptz,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    PRIMARY KEY (message_id, part)
);
CREATE INDEX message_parts_twilio_sid ON message_parts (twilio_sid) WHERE twilio_sid IS NOT NULL;

-- Twilio's status callbacks, by MessageSid: kept apart from the parts because a callback can
-- be projected before the send that produced its sid (they come from different streams).
CREATE TABLE delivery_statuses (
    message_sid   text NOT NULL,
    status        text NOT NULL,
    tenant_id     text,
    error_code    text,
    error_message text,
    reported_at   timestamptz NOT NULL,
    PRIMARY KEY (message_sid, status)
);

CREATE TABLE orphaned_messages (
    message_sid           text PRIMARY KEY,
    account_sid           text,
    messaging_service_sid text,
    to_address            text,
    reason                text,
    correlation_id        text,
    received_at           timestamptz NOT NULL
);

CREATE TABLE dead_letters (
    stream           text NOT NULL,
    consumer         text NOT NULL,
    stream_seq       bigint NOT NULL,
    subject          text,
    deliveries       integer,
    reason           text,
    error            text,
    event_type       text,
    event_id         text,
    correlation_id   text,
    tenant_id        text,
    dead_lettered_at timestamptz NOT NULL,
    PRIMARY KEY (stream, consumer, stream_seq)
);
CREATE INDEX dead_letters_tenant ON dead_letters (tenant_id, dead_lettered_at DESC);

-- Every event of a correlation_id (and every dead letter of one), for the trace waterfall.
CREATE TABLE timeline_events (
    event_id        text PRIMARY KEY,
    correlation_id  text NOT NULL,
    tenant_id       text,
    conversation_id text,
    type            text NOT NULL,
    version         text,
    service         text NOT NULL,
    subject         text,
    causation_id    text,
    occurred_at     timestamptz NOT NULL
);
CREATE INDEX timeline_correlation ON timeline_events (correlation_id, occurred_at, event_id);
