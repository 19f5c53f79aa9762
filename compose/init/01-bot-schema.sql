-- Run once by the postgres image's entrypoint when the cluster is created
-- (/docker-entrypoint-initdb.d), as real stacks ship their schema.
CREATE TABLE IF NOT EXISTS memories (
  id bigserial PRIMARY KEY,
  user_id text NOT NULL,
  body text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS memories_user ON memories (user_id);
