-- Embeddings of assets (issue #23): which embedder made each vector (name/version), so
-- a change of embedder re-embeds instead of mixing spaces, and when; an asset the
-- embedder could not read keeps a NULL vector with its embedder set (not retried until
-- the embedder changes).
ALTER TABLE assets ADD COLUMN embedder text;
ALTER TABLE assets ADD COLUMN embedded_at timestamptz;

-- Nearest neighbours by cosine distance (`<=>`).
CREATE INDEX assets_embedding_hnsw_idx ON assets USING hnsw (embedding vector_cosine_ops);
-- What the embedding task still has to do, oldest first.
CREATE INDEX assets_embedder_idx ON assets (embedder, created_at);
