-- A From domain's sources added up over all their days (first and last day seen), beside the
-- per-day rollup: a window's largest sources are found among the largest overall, each made
-- exact from the days in the window, so a summary reads a few hundred rows, not every source of
-- every day (with 1,000,000 report rows, 340,000 per-day source rows took 0.7 s to add up).
CREATE TABLE dmarc_source_totals (
    header_from TEXT NOT NULL,
    source_ip TEXT NOT NULL,
    class TEXT NOT NULL,
    passed BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    first_day BIGINT NOT NULL,
    last_day BIGINT NOT NULL,
    PRIMARY KEY (header_from, source_ip, class)
);
INSERT INTO dmarc_source_totals (header_from, source_ip, class, passed, failed, first_day, last_day)
SELECT header_from, source_ip, class, SUM(passed), SUM(failed), MIN(day), MAX(day)
FROM dmarc_source_daily GROUP BY header_from, source_ip, class;
CREATE INDEX dmarc_source_daily_source ON dmarc_source_daily (header_from, source_ip, day);
