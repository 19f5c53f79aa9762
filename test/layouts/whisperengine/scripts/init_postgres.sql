-- This project's stand-in for WhisperEngine's scripts/init_postgres.sql: the schema a chat bot
-- keeps next to its vector and graph stores, created once by the postgres image's
-- /docker-entrypoint-initdb.d on first start (as POSTGRES_USER, in POSTGRES_DB).
CREATE TABLE IF NOT EXISTS users (
    id          bigserial PRIMARY KEY,
    user_id     text UNIQUE NOT NULL,
    username    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    preferences jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE IF NOT EXISTS conversations (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    channel_id  text NOT NULL,
    message     text NOT NULL,
    response    text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS memories (
    id          bigserial PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    kind        text NOT NULL,
    content     text NOT NULL,
    importance  real NOT NULL DEFAULT 0.5,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS facts (
    id          bigserial PRIMARY KEY,
    user_id     text REFERENCES users (user_id) ON DELETE CASCADE,
    subject     text NOT NULL,
    content     text NOT NULL,
    confidence  real NOT NULL DEFAULT 0.8
);

CREATE INDEX IF NOT EXISTS conversations_user_time ON conversations (user_id, created_at);
CREATE INDEX IF NOT EXISTS memories_user_kind ON memories (user_id, kind);

INSERT INTO users (user_id, username) VALUES ('system', 'WhisperEngine') ON CONFLICT DO NOTHING;
