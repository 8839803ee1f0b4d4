-- Tracing events kept for operators (GET /api/v1/admin/logs), written in batches.
CREATE TABLE log_entry (
    id         bigserial PRIMARY KEY,
    ts         timestamptz NOT NULL,
    level      text NOT NULL,
    target     text NOT NULL,
    message    text NOT NULL,
    fields     jsonb NOT NULL DEFAULT '{}'::jsonb,
    request_id text,
    user_id    text,
    session_id text,
    job_id     text,
    provider   text,
    account_id text
);
CREATE INDEX log_entry_ts_idx ON log_entry (ts DESC);
CREATE INDEX log_entry_request_idx ON log_entry (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX log_entry_user_idx ON log_entry (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX log_entry_job_idx ON log_entry (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX log_entry_session_idx ON log_entry (session_id) WHERE session_id IS NOT NULL;
