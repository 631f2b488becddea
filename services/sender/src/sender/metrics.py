"""Sender metrics, beside the runtime's."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

SENT = Counter("switchboard_sender_messages_sent_total",
               "Parts accepted by Twilio (found by lookup included)", ["how"])
FAILED = Counter("switchboard_sender_failures_total",
                 "Parts recorded as failed, by reason and Twilio error code", ["reason", "code"])
TWILIO_ERRORS = Counter("switchboard_sender_twilio_errors_total",
                        "Failed Messages API calls by HTTP status and Twilio error code",
                        ["status", "code"])
RETRIES = Counter("switchboard_sender_retries_total",
                  "Messages API calls retried within a delivery", ["reason"])
AUTH_FAILURES = Counter("switchboard_sender_twilio_auth_failures_total",
                        "Messages API calls refused with 401/403: a tenant's credentials are "
                        "wrong (alert on any increase)", ["tenant_id"])
DOUBLE_SENDS_AVOIDED = Counter("switchboard_sender_double_sends_avoided_total",
                               "Sends not repeated: part already sent, or found by lookup",
                               ["how"])
PARTS_PER_REPLY = Histogram("switchboard_sender_parts_per_reply", "Parts per reply",
                            buckets=(1, 2, 3, 4, 6, 10))
TURN_SECONDS = Histogram("switchboard_sender_turn_seconds",
                         "From the gateway accepting the turn's first user message to the "
                         "reply's first part accepted by the Messages API (the SLO, ADR 0019)",
                         ["fallback"], buckets=(0.5, 1, 2, 3, 5, 7.5, 10, 15, 30, 60, 120))
SEND_SECONDS = Histogram("switchboard_sender_send_seconds",
                         "Duration of one Messages API create call",
                         buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
STATUSES = Counter("switchboard_sender_statuses_total",
                   "Delivery status callbacks by outcome (applied, stale, unknown)",
                   ["status", "outcome"])
RATE_WAIT_SECONDS = Histogram("switchboard_sender_rate_limit_wait_seconds",
                              "Time waited for the per-number rate limit",
                              buckets=(0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0))
REPLY_WAITS = Counter("switchboard_sender_reply_waits_total",
                      "Times a reply waited because an earlier reply of its conversation was "
                      "still going out")
ACCEPTANCE_WAITS = Counter("switchboard_sender_acceptance_waits_total",
                           "Times a reply's first part waited on a durable timer because the "
                           "conversation had not decided on its turn within VIEW_SETTLE_S")
VIEW_BEHIND_WAITS = Counter("switchboard_sender_view_behind_waits_total",
                            "Times a conversation's request waited on a durable timer because "
                            "the view was older than the request within VIEW_SETTLE_S")
VIEW_SETTLE_SECONDS = Histogram("switchboard_sender_view_settle_seconds",
                                "Time waiting for a missing or undecided view in the handler",
                                buckets=(0.0, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0))
VIEW_LOOKS = Counter("switchboard_sender_view_looks_total",
                     "Views a waiting handler looked at again: pushed (the replica's watcher "
                     "of the bucket woke it) or reread (its safety-net direct read)", ["how"])
LEASE_TAKEOVERS = Counter("switchboard_sender_lease_takeovers_total",
                          "Conversations taken over from an earlier reply: gone_out (it was "
                          "done) or expired (its sender stopped renewing: alert on a rise)",
                          ["how"])
HANDOFF_REPLIES = Counter("switchboard_sender_handoff_replies_total",
                          "Agent replies not sent because the agent handed the turn to a person "
                          "(handoff_reason): the conversation tells the user instead")
AFTER_WAITS = Counter("switchboard_sender_after_waits_total",
                      "Times a reply or a message the conversation asked for waited for the "
                      "outbound message before it (after) to go out")
AFTER_GIVEN_UP = Counter("switchboard_sender_after_given_up_total",
                         "Messages sent without their predecessor (after) having gone out, "
                         "after AFTER_WAIT_S: missing (it never reached the sender) or "
                         "unfinished", ["why"])
