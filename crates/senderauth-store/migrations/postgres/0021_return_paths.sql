-- Each connected domain's return-path target in the platform's zone (issue 16), where the
-- platform's DNS serves the sending addresses' SPF record and the bounce hosts' MX; the
-- customer's `rp.<domain>` CNAME points there. Gone with its domain.
CREATE TABLE return_paths (
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (domain_id, name)
);
CREATE INDEX return_paths_name ON return_paths (name);
