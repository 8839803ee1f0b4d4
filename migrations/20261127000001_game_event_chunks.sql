-- Issue 4 (command→event latency): the tick's write-behind batch was dominated by
-- per-row costs. Events are now stored as one chunk per session and batch (a run of
-- consecutive sequence numbers) instead of one row each, without a per-row foreign-key
-- check, and saves are stored as JSON text (no jsonb parse on every tick).

-- Saves: JSON text. `save::jsonb` still works for ad-hoc queries.
ALTER TABLE game_sessions ALTER COLUMN save TYPE text USING save::text;

-- A chunk holds events first_seq..=last_seq of one session, each encoded as
--   at_ms (int8, big-endian) · length (int4, big-endian) · protocol::v1::GameEvent (postcard)
-- in sequence order. Trimming drops whole chunks; readers skip events below `from`.
CREATE TABLE game_event_chunks (
    session_id  uuid NOT NULL,
    first_seq   bigint NOT NULL,
    last_seq    bigint NOT NULL CHECK (last_seq >= first_seq),
    last_at_ms  bigint NOT NULL,
    events      bytea NOT NULL,
    PRIMARY KEY (session_id, first_seq)
);

INSERT INTO game_event_chunks (session_id, first_seq, last_seq, last_at_ms, events)
SELECT session_id, seq, seq, at_ms, int8send(at_ms) || int4send(length(event)) || event
FROM game_events;

DROP TABLE game_events;

-- No foreign key (its check per inserted row cost more than the insert): deleting a
-- session (directly or by cascade from its user) deletes its chunks here instead.
CREATE FUNCTION game_sessions_delete_chunks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM game_event_chunks c USING gone g WHERE c.session_id = g.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER game_sessions_delete_chunks
    AFTER DELETE ON game_sessions
    REFERENCING OLD TABLE AS gone
    FOR EACH STATEMENT EXECUTE FUNCTION game_sessions_delete_chunks();

-- Every tick rewrites the saves of the sessions it touched: leave room on each page so
-- those updates stay heap-only (no index entries, no page splits).
ALTER TABLE game_sessions SET (fillfactor = 50);
