-- Reuse before generating (issue #23): a create may reuse an asset generated from a
-- similar prompt (trigram similarity, pg_trgm) when no embedder with a text side can
-- compare the prompt with the assets' vectors.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX assets_prompt_trgm_idx ON assets USING gin (prompt gin_trgm_ops)
    WHERE origin = 'generated';
