-- Issue 4: the tick now writes saves in a compact binary form
-- (domain::narrative::save_bin) instead of JSON: encoding them was about a fifth of the
-- tick, on the acknowledgement path. The batch log keeps that form; the applier (and
-- the startup replay) convert each save to JSON for game_sessions.save, as before.
-- In a version 1 body (migration 20261128000001), session flags gain a bit:
--   flags u8 (1 = ended, 2 = has save as UTF-8 JSON, 4 = has save in the binary form)
-- with the same length u32 · bytes after next_seq; 2 and 4 never come together.
COMMENT ON COLUMN game_batch_log.body IS
    'A tick''s batch: version 1 (plain, see migration 20261128000001; session flag 4 = '
    'binary save, see 20261130000001) or version 2 (u8 2, plain length u32 big-endian, '
    'LZ4 block of a version 1 body).';
