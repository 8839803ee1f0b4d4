-- pgvector powers similarity search over asset embeddings.
CREATE EXTENSION IF NOT EXISTS vector;
