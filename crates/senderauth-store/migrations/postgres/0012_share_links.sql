-- Read-only links to a domain's setup page, for a colleague who adds the records: each lasts
-- until it expires or is revoked, and goes with its domain. Only the link secret's SHA-256 is
-- stored.
CREATE TABLE share_links (
    id BIGSERIAL PRIMARY KEY,
    secret_hash BYTEA NOT NULL UNIQUE,
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX share_links_domain ON share_links (domain_id);
