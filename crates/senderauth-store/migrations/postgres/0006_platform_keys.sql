-- The platform's own DKIM keys: the variable domain's, which signs the mail of domains not
-- authenticated yet (their From rewritten to the variable domain). Published like a domain's.
CREATE TABLE platform_keys (
    id BIGSERIAL PRIMARY KEY,
    selector TEXT NOT NULL,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    master_key_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    active_at BIGINT,
    retired_at BIGINT,
    revoked_at BIGINT
);
CREATE UNIQUE INDEX platform_keys_published ON platform_keys (name) WHERE state <> 'removed';
