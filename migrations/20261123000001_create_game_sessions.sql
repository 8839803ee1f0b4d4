-- Game sessions (issue 4): the durable state of every narrative session and a bounded
-- log of its events, written behind by the tick in one transaction per tick batch.
CREATE TABLE game_sessions (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    world       text NOT NULL DEFAULT 'default',
    scene       text,
    seed        bigint NOT NULL,
    -- 'active' or 'ended'
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    -- Last committed domain::narrative::SessionSave (JSON); NULL before the first tick.
    save        jsonb,
    -- Sequence number of the next event.
    next_seq    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX game_sessions_user_idx ON game_sessions (user_id, created_at DESC);

-- The resend window: the last events of each session (older ones are trimmed).
CREATE TABLE game_events (
    session_id  uuid NOT NULL REFERENCES game_sessions (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    at_ms       bigint NOT NULL,
    -- protocol::v1::GameEvent, postcard-encoded.
    event       bytea NOT NULL,
    PRIMARY KEY (session_id, seq)
);
