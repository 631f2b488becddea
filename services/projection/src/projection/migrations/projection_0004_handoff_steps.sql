-- depends: projection_0003_people_in_the_loop
-- Each handoff's wait for a person, step by step (readmodels/handoffs.py): one row per
-- HandoffRequested, HandoffClaimed and HandoffReleased, keyed by the event's id, in the
-- CONVERSATION stream's order (seq). A request's wait ends at the first step after it; the
-- transaction that first finds that end sets ended_seq and, once committed, observes the wait
-- in switchboard_handoff_wait_seconds (handoff_waits.py). A rebuild does not empty this
-- table: the replayed events upsert the same rows and find every wait ended already, so no
-- wait is observed twice.
CREATE TABLE handoff_steps (
    event_id        text PRIMARY KEY,
    conversation_id text NOT NULL,
    tenant_id       text,
    seq             bigint NOT NULL,   -- the event's CONVERSATION stream sequence
    step            text NOT NULL,     -- requested, claimed, expired (released unclaimed
                                       -- after the deadline), released
    source          text,              -- a request's: user, agent, operator
    at              timestamptz NOT NULL,
    ended_seq       bigint             -- a request's: the step that ended its wait
);
CREATE INDEX handoff_steps_conversation ON handoff_steps (conversation_id, seq);
