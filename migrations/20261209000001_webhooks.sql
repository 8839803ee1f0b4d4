-- Issue 22: webhooks. A user registers endpoints (a URL and the event types it wants);
-- every job and asset event of that user becomes one message per matching endpoint in
-- a durable outbox, delivered as a signed POST (Standard Webhooks) and retried with
-- backoff for about a day. Every attempt is logged.

CREATE TABLE webhook_endpoints (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    url         text NOT NULL,
    -- Event types (`job:created`, …) or `*` for all.
    events      text[] NOT NULL,
    description text NOT NULL DEFAULT '',
    -- The signing secret, sealed with the server's secret key (bound to `id`).
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_id);

-- The outbox: one row per (endpoint, event). `seq` is the order messages were written;
-- messages of one subject (a job, an asset) go out one at a time in
-- (`occurred_at`, `seq`) order.
CREATE TABLE webhook_messages (
    id              uuid PRIMARY KEY,
    seq             bigserial NOT NULL,
    endpoint_id     uuid NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_type      text NOT NULL,
    subject_id      uuid NOT NULL,
    -- When the event happened (the database time of the change it reports).
    occurred_at     timestamptz NOT NULL,
    -- The exact body that is signed and sent.
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    -- Attempts since the message was (re)queued: the index into the retry schedule.
    round_attempts  integer NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    -- When a pending message may be tried next; while an attempt runs, the end of its
    -- lease (a node that died mid-attempt leaves it to be tried again).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    last_status     integer,
    last_error      text
);
CREATE INDEX webhook_messages_due ON webhook_messages (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_messages_subject ON webhook_messages (endpoint_id, subject_id, occurred_at, seq)
    WHERE status = 'pending';
CREATE INDEX webhook_messages_endpoint ON webhook_messages (endpoint_id, seq DESC);
CREATE INDEX webhook_messages_created ON webhook_messages (created_at);

-- The delivery log: one row per attempt.
CREATE TABLE webhook_attempts (
    message_id  uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz NOT NULL,
    duration_ms integer NOT NULL,
    -- The receiver's HTTP status, when it answered.
    status_code integer,
    error       text,
    PRIMARY KEY (message_id, attempt)
);
