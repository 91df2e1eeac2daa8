-- Accounts, API tokens, reserved domains, connected domains, their latest verification and
-- their status history. Times are Unix seconds.
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    domain_limit INTEGER,
    created_at INTEGER NOT NULL
);

-- A token with no account is an admin token. Only the SHA-256 of a token is stored.
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE reserved_domains (
    domain TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE domains (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- When the current setup window began: connection, or the last request to verify again.
    setup_started_at INTEGER NOT NULL,
    last_checked_at INTEGER,
    -- NULL: not scheduled (a failed domain waits for its customer).
    next_check_at INTEGER,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    degraded_since INTEGER,
    -- A node checking the domain holds it until this time; afterwards any node may take it.
    lease_until INTEGER,
    leased_by TEXT,
    UNIQUE (account_id, domain)
);
CREATE INDEX domains_due ON domains (next_check_at);
CREATE INDEX domains_by_status ON domains (account_id, status, domain);

CREATE TABLE verification_results (
    domain_id INTEGER PRIMARY KEY REFERENCES domains (id) ON DELETE CASCADE,
    checked_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    dkim_status TEXT NOT NULL,
    spf_status TEXT NOT NULL,
    dmarc_status TEXT NOT NULL,
    result_json TEXT NOT NULL
);

CREATE TABLE status_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id INTEGER NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    at INTEGER NOT NULL,
    from_status TEXT,
    to_status TEXT NOT NULL,
    -- The lifecycle event announced with the change (domain.verified, ...), if any.
    event TEXT
);
CREATE INDEX status_events_by_domain ON status_events (domain_id, id);

-- Where an account wants its domains' status changes sent. The secret signs each delivery, so
-- it is kept as is (shown to the account once, when the endpoint is made).
CREATE TABLE webhook_endpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_by_account ON webhook_endpoints (account_id);

-- One delivery per endpoint and event, made in the same transaction as the event. Claimed with
-- a lease like domains, so it is sent once across nodes.
CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint_id INTEGER NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL REFERENCES status_events (id) ON DELETE CASCADE,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER,
    lease_until INTEGER,
    leased_by TEXT,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at);
