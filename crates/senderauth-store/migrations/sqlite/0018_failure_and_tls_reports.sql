-- The other reports sent to the DMARC report address (issue 15), and the names of report sources. Failure reports keep what
-- failed, for which domain and from where, and the failed message's authentication header
-- fields with every address's local part redacted (`detail_json`); never a body or a subject.
-- They are deleted 7 days after they arrive. TLS reports (RFC 8460) are kept as received, once
-- per (organization, report id).
CREATE TABLE dmarc_failure_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    reported_domain TEXT NOT NULL,
    source_ip TEXT,
    auth_failure TEXT,
    received_at INTEGER NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX dmarc_failure_reports_domain ON dmarc_failure_reports (reported_domain, id);
CREATE INDEX dmarc_failure_reports_received ON dmarc_failure_reports (received_at);
CREATE TABLE tls_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization TEXT NOT NULL,
    report_id TEXT NOT NULL,
    start_text TEXT NOT NULL,
    end_text TEXT NOT NULL,
    policy_domains TEXT NOT NULL,
    successful_sessions INTEGER NOT NULL,
    failed_sessions INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    json_gzip BLOB NOT NULL
);
CREATE UNIQUE INDEX tls_reports_identity ON tls_reports (organization, report_id);
-- Reverse DNS names of report sources, looked up in the background (never while a report is
-- read): the sources of each new report with the most messages are queued (`pending`); a name
-- is shown only when it resolves back to the address (`confirmed`); others are `unconfirmed`,
-- `none` (no PTR) or `failed` (a temporary DNS failure, tried again later).
CREATE TABLE source_names (
    source_ip TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    resolved_at INTEGER
);
CREATE INDEX source_names_due ON source_names (status, resolved_at);
