-- Every check of a domain, run-length encoded: consecutive checks with the same outcome (the
-- domain's status, each method's status, the problems found) are one row with the first and
-- last time and a count. A domain checked daily for a year while verified is one row; a setup
-- that changes outcome as records are added gets a row per change.
CREATE TABLE check_runs (
    id BIGSERIAL PRIMARY KEY,
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    first_at BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    checks BIGINT NOT NULL,
    status TEXT NOT NULL,
    dkim_status TEXT NOT NULL,
    spf_status TEXT NOT NULL,
    dmarc_status TEXT NOT NULL,
    -- The problem codes found, sorted, separated by spaces.
    problem_codes TEXT NOT NULL
);
CREATE INDEX check_runs_by_domain ON check_runs (domain_id, id);
