-- DMARC aggregate reports (issue 15). A report is known by (reporting organization, report id,
-- policy domain, date range): a re-send or a copy through a second MX is counted on the report
-- already stored (`duplicates`, and `conflicts` when its records differ: `digest`). Its rows
-- keep what the receiver said and the class the platform gave them; `dmarc_daily` adds them up
-- per From domain, day and class as they are stored, so that a domain's summary reads a few
-- rows per day, not every row. `dmarc_report_domains` lists the From domains of each report
-- (a report for a root domain covers its subdomains, which may be other accounts' domains).
CREATE TABLE dmarc_reports (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_name TEXT NOT NULL,
    report_id TEXT NOT NULL,
    policy_domain TEXT NOT NULL,
    begin_at INTEGER NOT NULL,
    end_at INTEGER NOT NULL,
    org_email TEXT,
    format TEXT NOT NULL,
    header_json TEXT NOT NULL,
    digest TEXT NOT NULL,
    record_count INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    duplicates INTEGER NOT NULL DEFAULT 0,
    conflicts INTEGER NOT NULL DEFAULT 0,
    xml_gzip BLOB NOT NULL
);
CREATE UNIQUE INDEX dmarc_reports_identity ON dmarc_reports (org_name, report_id, policy_domain, begin_at, end_at);
CREATE TABLE dmarc_rows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id INTEGER NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    header_from TEXT NOT NULL,
    day INTEGER NOT NULL,
    source_ip TEXT NOT NULL,
    message_count INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    dkim TEXT NOT NULL,
    spf TEXT NOT NULL,
    class TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
CREATE INDEX dmarc_rows_from_day ON dmarc_rows (header_from, day);
CREATE INDEX dmarc_rows_report ON dmarc_rows (report_id);
CREATE TABLE dmarc_daily (
    header_from TEXT NOT NULL,
    day INTEGER NOT NULL,
    class TEXT NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (header_from, day, class)
);
CREATE TABLE dmarc_report_domains (
    header_from TEXT NOT NULL,
    report_id INTEGER NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    PRIMARY KEY (header_from, report_id)
);
