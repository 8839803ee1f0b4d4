-- Generation pipeline: provider accounts, jobs (a durable queue with leases), one row
-- per provider submission attempt, assets with lineage, and the upload cache.

CREATE TABLE provider_accounts (
    id                  uuid PRIMARY KEY,
    provider            text NOT NULL,
    label               text NOT NULL,
    -- NULL: shared with every user.
    owner_id            uuid REFERENCES users (id) ON DELETE CASCADE,
    api_key             text NOT NULL,
    base_url            text,
    status              text NOT NULL DEFAULT 'active'
        CHECK (status IN ('active', 'exhausted', 'error', 'disabled', 'rate_limited')),
    priority            integer NOT NULL DEFAULT 0,
    -- NULL: unknown or unlimited.
    credits             bigint,
    max_concurrent_jobs integer NOT NULL DEFAULT 2 CHECK (max_concurrent_jobs >= 0),
    current_jobs        integer NOT NULL DEFAULT 0 CHECK (current_jobs >= 0),
    -- NULL: no daily limit.
    daily_limit         integer CHECK (daily_limit >= 0),
    jobs_today          integer NOT NULL DEFAULT 0,
    jobs_day            date,
    cooldown_until      timestamptz,
    last_used_at        timestamptz,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX provider_accounts_provider_idx ON provider_accounts (provider, priority DESC);

CREATE TABLE generations (
    id                   uuid PRIMARY KEY,
    user_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider             text NOT NULL,
    operation            text NOT NULL CHECK (operation IN
        ('text_to_video', 'image_to_video', 'video_extend', 'video_transition', 'fusion')),
    -- Canonical parameters (defaults applied) and input references.
    params               jsonb NOT NULL,
    inputs               jsonb NOT NULL DEFAULT '[]',
    params_hash          text NOT NULL,
    status               text NOT NULL DEFAULT 'pending' CHECK (status IN
        ('pending', 'processing', 'paused', 'completed', 'failed', 'cancelled')),
    priority             smallint NOT NULL DEFAULT 5 CHECK (priority BETWEEN 0 AND 10),
    scheduled_at         timestamptz NOT NULL DEFAULT now(),
    idempotency_key      text,
    force_new            boolean NOT NULL DEFAULT false,
    preferred_account_id uuid REFERENCES provider_accounts (id) ON DELETE SET NULL,
    -- The account of the current or last attempt; `account_reserved` while it holds
    -- one of the account's concurrency slots.
    account_id           uuid REFERENCES provider_accounts (id) ON DELETE SET NULL,
    account_reserved     boolean NOT NULL DEFAULT false,
    -- Lease: bumped on every claim; every worker write is fenced by (id, attempt, owner).
    attempt              integer NOT NULL DEFAULT 0,
    lease_owner          text,
    lease_expires_at     timestamptz,
    heartbeat_at         timestamptz,
    -- Failed attempts counted against max_retries.
    retry_count          integer NOT NULL DEFAULT 0,
    max_retries          integer NOT NULL DEFAULT 3,
    progress             real,
    asset_id             uuid,
    reused_from          uuid REFERENCES generations (id) ON DELETE SET NULL,
    parent_generation_id uuid REFERENCES generations (id) ON DELETE SET NULL,
    error_code           text,
    error_message        text,
    metadata             jsonb NOT NULL DEFAULT '{}',
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    started_at           timestamptz,
    completed_at         timestamptz
);
CREATE UNIQUE INDEX generations_idempotency_key ON generations (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX generations_queue_idx ON generations (priority DESC, created_at, id)
    WHERE status = 'pending';
CREATE INDEX generations_lease_idx ON generations (lease_expires_at)
    WHERE status = 'processing';
CREATE INDEX generations_user_idx ON generations (user_id, created_at DESC, id DESC);
CREATE INDEX generations_active_user_idx ON generations (user_id)
    WHERE status IN ('pending', 'processing', 'paused');
CREATE INDEX generations_reserved_idx ON generations (account_id) WHERE account_reserved;
CREATE INDEX generations_hash_idx ON generations (user_id, params_hash)
    WHERE status = 'completed';

-- One row per provider submit: at most one per job attempt, written before the call.
CREATE TABLE provider_submissions (
    id            uuid PRIMARY KEY,
    generation_id uuid NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
    attempt       integer NOT NULL,
    provider      text NOT NULL,
    account_id    uuid REFERENCES provider_accounts (id) ON DELETE SET NULL,
    remote_id     text,
    status        text NOT NULL DEFAULT 'submitting' CHECK (status IN
        ('submitting', 'submitted', 'succeeded', 'failed', 'filtered', 'cancelled', 'abandoned')),
    error_class   text,
    error_code    text,
    error_message text,
    submitted_at  timestamptz NOT NULL DEFAULT now(),
    accepted_at   timestamptz,
    finished_at   timestamptz,
    UNIQUE (generation_id, attempt)
);

CREATE TABLE assets (
    id                   uuid PRIMARY KEY,
    owner_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    media_type           text NOT NULL CHECK (media_type IN ('video', 'image', 'audio')),
    mime                 text NOT NULL,
    -- sha256 hex of the content; the file lives at `path` under the media dir.
    content_hash         text NOT NULL,
    size_bytes           bigint NOT NULL CHECK (size_bytes >= 0),
    width                integer,
    height               integer,
    duration_ms          bigint,
    path                 text NOT NULL,
    thumbnail_path       text,
    origin               text NOT NULL CHECK (origin IN ('generated', 'uploaded')),
    provider             text,
    remote_id            text,
    remote_url           text,
    source_generation_id uuid REFERENCES generations (id) ON DELETE SET NULL,
    operation            text,
    prompt               text,
    embedding            vector(1024),
    created_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX assets_owner_idx ON assets (owner_id, created_at DESC, id DESC);
CREATE INDEX assets_hash_idx ON assets (content_hash);
CREATE INDEX assets_generation_idx ON assets (source_generation_id);

ALTER TABLE generations ADD CONSTRAINT generations_asset_fk
    FOREIGN KEY (asset_id) REFERENCES assets (id) ON DELETE SET NULL;

CREATE TABLE asset_lineage (
    parent_asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    child_asset_id  uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    relation        text NOT NULL,
    operation       text NOT NULL,
    sequence        integer NOT NULL DEFAULT 0,
    generation_id   uuid REFERENCES generations (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (child_asset_id, parent_asset_id, relation, sequence)
);
CREATE INDEX asset_lineage_parent_idx ON asset_lineage (parent_asset_id);

-- An input already uploaded to a provider (scope: the account id, or '*' when the
-- remote id is valid for every account) is reused instead of uploaded again.
CREATE TABLE provider_uploads (
    asset_id     uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    provider     text NOT NULL,
    scope        text NOT NULL DEFAULT '*',
    remote_id    text NOT NULL,
    remote_url   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, provider, scope)
);
