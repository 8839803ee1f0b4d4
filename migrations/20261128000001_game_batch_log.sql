-- Issue 4 (command→event latency): a tick's batch is made durable as ONE row here (a
-- single insert and a WAL flush), and its acknowledgements go out then. Applying it to
-- game_sessions and game_event_chunks (about 2 ms of PostgreSQL time per tick under
-- load) happens after, off the acknowledgement path, in a transaction that also deletes
-- the row. Rows still here at startup are applied, in id order, before anything is read.
--
-- body (all integers big-endian):
--   version u8 = 1
--   sessions: count u32, then per session
--     id (16 bytes) · flags u8 (1 = ended, 2 = has save) · next_seq i64 ·
--     [save: length u32 · UTF-8 JSON]
--   events: count u32, then per event
--     session id (16 bytes) · seq i64 · at_ms i64 · length u32 · protocol::v1::GameEvent (postcard)
--   trims: count u32, then per trim
--     session id (16 bytes) · keep_from i64
CREATE TABLE game_batch_log (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    body  bytea NOT NULL
);
-- Stored out of line uncompressed: compressing ~100 kB on every tick costs more than it saves.
ALTER TABLE game_batch_log ALTER COLUMN body SET STORAGE EXTERNAL;
