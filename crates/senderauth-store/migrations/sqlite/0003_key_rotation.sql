-- Key rotation: at most one published key per selector and one pending key per domain, even
-- when several nodes rotate at once; and the active keys found by age.
CREATE UNIQUE INDEX dkim_keys_published ON dkim_keys (domain_id, selector) WHERE state <> 'removed';
CREATE UNIQUE INDEX dkim_keys_one_pending ON dkim_keys (domain_id) WHERE state = 'pending';
CREATE INDEX dkim_keys_by_state ON dkim_keys (state, active_at, retired_at, created_at);
