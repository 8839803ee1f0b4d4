-- Issue 22: credit budgets, set by admins, per user and per world, each with an
-- optional daily and an optional total limit. A job counts toward its user and, when
-- its metadata names one (`metadata.world`: the scene media of a world does), toward
-- that world: an unfinished job with its estimated credits, a finished one with the
-- credits it was charged (see store::generation::budgets). A create that would go over a limit is refused with
-- `budget_exceeded`.
CREATE TABLE credit_budgets (
    scope       text NOT NULL CHECK (scope IN ('user', 'world')),
    -- A user id, or a world id.
    scope_id    text NOT NULL,
    daily_limit bigint CHECK (daily_limit >= 0),
    total_limit bigint CHECK (total_limit >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, scope_id)
);

-- A world's spending is read by its jobs.
CREATE INDEX generations_world ON generations ((metadata ->> 'world'), created_at)
    WHERE metadata ? 'world';
