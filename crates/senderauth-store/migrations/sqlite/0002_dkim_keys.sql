-- The platform's side of DKIM: a key pair per customer selector, published in the platform's
-- zone at the selector's CNAME target, and the names each node's DNS server must reload.

-- The SPF include host the domain was given (where its account's include record lives).
ALTER TABLE domains ADD COLUMN spf_include TEXT;
CREATE INDEX domains_by_spf_include ON domains (spf_include);

CREATE TABLE dkim_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    selector TEXT NOT NULL,
    -- Where the public key is published (the CNAME target), lowercase, no trailing dot.
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    -- The p= value: base64 of the public key.
    public_key TEXT NOT NULL,
    -- The private key (PKCS#8) sealed with AES-256-GCM under the master key master_key_id.
    private_key BLOB NOT NULL,
    master_key_id TEXT NOT NULL,
    -- standby | pending | active | retired | revoked (published) or removed (not published).
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    active_at INTEGER,
    retired_at INTEGER,
    revoked_at INTEGER
);
CREATE INDEX dkim_keys_by_domain ON dkim_keys (domain_id, selector);
CREATE INDEX dkim_keys_by_name ON dkim_keys (name);

-- Names whose records changed, in commit order; every node's DNS server reloads them.
CREATE TABLE zone_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    at INTEGER NOT NULL
);
