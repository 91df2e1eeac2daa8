-- Web UI sessions: signed in with an account token, a session lasts until it expires, the
-- customer signs out, or the token is revoked. Only the session secret's SHA-256 is stored.
CREATE TABLE ui_sessions (
    id BIGSERIAL PRIMARY KEY,
    session_hash BYTEA NOT NULL UNIQUE,
    token_id BIGINT NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- Sent back in every form; a form without it is refused.
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
