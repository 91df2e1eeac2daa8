-- DMARC reports, continued (issue 15): what a domain's summary and sources read without walking
-- every row, what the gateway sent each receiving organization, and the DMARC events sent as
-- webhooks.
--
-- `dmarc_source_daily`: a From domain's messages per day, source address and class (the
-- sources table and the failing senders read this, not `dmarc_rows`).
CREATE TABLE dmarc_source_daily (
    header_from TEXT NOT NULL,
    day INTEGER NOT NULL,
    source_ip TEXT NOT NULL,
    class TEXT NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (header_from, day, source_ip, class)
);
INSERT INTO dmarc_source_daily (header_from, day, source_ip, class, passed, failed)
SELECT header_from, day, source_ip, class,
       SUM(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN message_count ELSE 0 END),
       SUM(CASE WHEN dkim = 'pass' OR spf = 'pass' THEN 0 ELSE message_count END)
FROM dmarc_rows GROUP BY header_from, day, source_ip, class;
-- The first report each source of a From domain was seen in (`dmarc.new_source`).
CREATE TABLE dmarc_known_sources (
    header_from TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    class TEXT NOT NULL,
    first_report INTEGER NOT NULL,
    PRIMARY KEY (header_from, source_ip)
);
INSERT INTO dmarc_known_sources (header_from, source_ip, class, first_report)
SELECT header_from, source_ip, MIN(class), MIN(report_id) FROM dmarc_rows GROUP BY header_from, source_ip;
CREATE INDEX dmarc_known_sources_report ON dmarc_known_sources (first_report);
-- Per From domain, receiving organization and day: the messages it reported, and of them those
-- the platform sent (`platform_ok`, `platform_failing`).
CREATE TABLE dmarc_receiver_daily (
    header_from TEXT NOT NULL,
    receiver TEXT NOT NULL,
    day INTEGER NOT NULL,
    reports INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    platform_messages INTEGER NOT NULL,
    PRIMARY KEY (header_from, receiver, day)
);
-- What the gateway sent: signed messages per From domain, receiving organization and day.
CREATE TABLE dmarc_sent (
    header_from TEXT NOT NULL,
    receiver TEXT NOT NULL,
    day INTEGER NOT NULL,
    messages INTEGER NOT NULL,
    PRIMARY KEY (header_from, receiver, day)
);
CREATE INDEX dmarc_sent_day ON dmarc_sent (day);
-- A receiver found to have stopped reporting after its report of `last_day`: announced once.
CREATE TABLE dmarc_missing (
    header_from TEXT NOT NULL,
    receiver TEXT NOT NULL,
    last_day INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (header_from, receiver, last_day)
);
-- DMARC events (dmarc.platform_failing, dmarc.new_source, dmarc.reports_missing) travel as
-- domain events beside the status changes, with what they are about; the status history shows
-- status changes only (`detail_json IS NULL`).
ALTER TABLE status_events ADD COLUMN detail_json TEXT;
