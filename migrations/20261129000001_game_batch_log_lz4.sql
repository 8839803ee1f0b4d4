-- Issue 4: batch log bodies are now written compressed (format version 2); version 1
-- bodies (described in 20261128000001_game_batch_log.sql) are still read.
--   version u8 = 2 · plain length u32 (big-endian) · LZ4 block of a version 1 body
-- The saves' JSON shrinks about fourfold: fewer TOAST chunks and less WAL to write and
-- flush before a tick's commands are acknowledged.
COMMENT ON COLUMN game_batch_log.body IS
    'A tick''s batch: version 1 (plain, see migration 20261128000001) or version 2 '
    '(u8 2, plain length u32 big-endian, LZ4 block of a version 1 body).';
