-- Embeddings in half precision (issue #23): half the index (100,000 vectors of 1024
-- dimensions: about 230 MB instead of 450 MB), so more of it stays in the cache; the
-- features lose nothing that matters at two bytes a value.
DROP INDEX assets_embedding_hnsw_idx;
ALTER TABLE assets ALTER COLUMN embedding TYPE halfvec(1024) USING embedding::halfvec(1024);
CREATE INDEX assets_embedding_hnsw_idx ON assets USING hnsw (embedding halfvec_cosine_ops);
