-- The asset library (issue #23): what PixSim7's assets carry besides lineage.
--
-- * fps of a video track; tags (lowercase words, searched with `&&`/`@>`); archived
--   assets (hidden from lists and searches unless asked for, restorable);
-- * a version family: every version of a work shares `version_family_id` (the id of
--   its first version) and has a number, 1 for the first; `parent_asset_id` is the
--   asset a version, clip or variant was made from;
-- * sync status: whether the file is here (`downloaded`), still only at the provider
--   (`remote`), being fetched (`downloading`) or could not be fetched (`error`);
-- * lineage edges may name the time and frame range of the parent they used, and
--   relation `keyframe` (a still taken from a video) joins the others;
-- * clips: a segment of a video cut into its own asset (the clip's asset row is the
--   playable file; this table says where it came from and its label);
-- * variants: renditions of an asset made on demand and cached (e.g. `360p`, `poster`);
-- * branch points: a time in a video where the story can fork, with weighted and
--   conditioned variants that scenes reference.
ALTER TABLE assets
    ADD COLUMN fps real CHECK (fps IS NULL OR (fps > 0 AND fps <= 1000)),
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN archived_at timestamptz,
    ADD COLUMN parent_asset_id uuid REFERENCES assets (id) ON DELETE SET NULL,
    ADD COLUMN version_family_id uuid,
    ADD COLUMN version_number integer CHECK (version_number IS NULL OR version_number >= 1),
    ADD COLUMN version_message text,
    ADD COLUMN sync_status text NOT NULL DEFAULT 'downloaded'
        CHECK (sync_status IN ('remote', 'downloading', 'downloaded', 'error'));
ALTER TABLE assets DROP CONSTRAINT assets_origin_check;
ALTER TABLE assets ADD CONSTRAINT assets_origin_check
    CHECK (origin IN ('generated', 'uploaded', 'derived'));
CREATE INDEX assets_tags_idx ON assets USING gin (tags);
CREATE UNIQUE INDEX assets_version_idx ON assets (version_family_id, version_number)
    WHERE version_family_id IS NOT NULL;
CREATE INDEX assets_parent_idx ON assets (parent_asset_id) WHERE parent_asset_id IS NOT NULL;

ALTER TABLE asset_lineage
    ADD COLUMN start_ms bigint CHECK (start_ms IS NULL OR start_ms >= 0),
    ADD COLUMN end_ms bigint CHECK (end_ms IS NULL OR end_ms > start_ms),
    ADD COLUMN start_frame integer CHECK (start_frame IS NULL OR start_frame >= 0),
    ADD COLUMN end_frame integer CHECK (end_frame IS NULL OR end_frame >= start_frame);

CREATE TABLE asset_clips (
    -- The clip's own asset (its file is the cut segment).
    asset_id        uuid PRIMARY KEY REFERENCES assets (id) ON DELETE CASCADE,
    source_asset_id uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    start_ms        bigint NOT NULL CHECK (start_ms >= 0),
    end_ms          bigint NOT NULL CHECK (end_ms > start_ms),
    label           text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX asset_clips_source_idx ON asset_clips (source_asset_id, start_ms);

CREATE TABLE asset_variants (
    asset_id   uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    name       text NOT NULL,
    path       text NOT NULL,
    mime       text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    width      integer,
    height     integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (asset_id, name)
);

CREATE TABLE asset_branches (
    id         uuid PRIMARY KEY,
    asset_id   uuid NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    at_ms      bigint NOT NULL CHECK (at_ms >= 0),
    label      text,
    -- [{key, label, weight, condition, asset_id}], validated by the service.
    variants   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX asset_branches_asset_idx ON asset_branches (asset_id, at_ms);
