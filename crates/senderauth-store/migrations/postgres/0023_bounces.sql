-- Bounces that came back to the platform (issue 16): one row per bounce message, tied to the
-- message by the token of its envelope sender (account, domain, when it was relayed), and one
-- per recipient it reports. A bounce that did not read is kept with the reason and the message
-- (gzip), never lost. Gone with its domain (or account, for mail sent as the variable domain).
CREATE TABLE bounces (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    domain_id BIGINT REFERENCES domains (id) ON DELETE CASCADE,
    token TEXT NOT NULL,
    issued_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    format TEXT,
    reporting_mta TEXT,
    original_message_id TEXT,
    problem TEXT,
    raw_gzip BYTEA
);
CREATE INDEX bounces_token ON bounces (account_id, token);
CREATE INDEX bounces_domain ON bounces (domain_id, id);
CREATE TABLE bounce_recipients (
    id BIGSERIAL PRIMARY KEY,
    bounce_id BIGINT NOT NULL REFERENCES bounces (id) ON DELETE CASCADE,
    domain_id BIGINT REFERENCES domains (id) ON DELETE CASCADE,
    received_at BIGINT NOT NULL,
    address TEXT NOT NULL,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT,
    remote_mta TEXT,
    diagnostic TEXT
);
CREATE INDEX bounce_recipients_domain ON bounce_recipients (domain_id, id);
CREATE INDEX bounce_recipients_bounce ON bounce_recipients (bounce_id);
