-- The platform's own DKIM keys: the variable domain's, which signs the mail of domains not
-- authenticated yet (their From rewritten to the variable domain). Published like a domain's.
CREATE TABLE platform_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    selector TEXT NOT NULL,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    private_key BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    active_at INTEGER,
    retired_at INTEGER,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX platform_keys_published ON platform_keys (name) WHERE state <> 'removed';
