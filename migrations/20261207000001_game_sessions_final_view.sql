-- Issue 20: an ended session's join snapshot must show exactly what its events leave the
-- player with. Its last save is the previous tick's (an ended session has none), so
-- the tick hands over the final progression of each session that ends, and the final
-- batch stores it here, durably: JSON text of a protocol::v2::ProgressionView (text,
-- like `save`). NULL while a session runs, and for sessions ended before this column.
ALTER TABLE game_sessions ADD COLUMN final_view text;

-- In a version 1 batch log body (migration 20261128000001), session flags gain a bit:
--   flags u8 (1 = ended, 2 = JSON save, 4 = binary save, 8 = has final view)
-- and after the save (if any) comes [final view: length u32 · UTF-8 JSON].
COMMENT ON COLUMN game_batch_log.body IS
    'A tick''s batch: version 1 (plain, see migration 20261128000001; session flag 4 = '
    'binary save, see 20261130000001; flag 8 = final view, see 20261207000001) or '
    'version 2 (u8 2, plain length u32 big-endian, LZ4 block of a version 1 body).';
