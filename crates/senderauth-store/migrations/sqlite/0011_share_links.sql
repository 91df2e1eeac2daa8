-- Read-only links to a domain's setup page, for a colleague who adds the records: each lasts
-- until it expires or is revoked, and goes with its domain. Only the link secret's SHA-256 is
-- stored.
CREATE TABLE share_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    secret_hash BLOB NOT NULL UNIQUE,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX share_links_domain ON share_links (domain_id);
