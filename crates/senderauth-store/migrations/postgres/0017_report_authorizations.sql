-- RFC 9990 section 4: the report host's consent to receive a policy domain's aggregate reports,
-- `<policy domain>._report._dmarc.<report host>` TXT "v=DMARC1", which the platform's DNS server
-- publishes for each connected domain's policy domains (its own and its organizational
-- domain's) while at least one domain needs it. Never a wildcard.
CREATE TABLE report_authorizations (
    domain_id BIGINT NOT NULL REFERENCES domains (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    PRIMARY KEY (domain_id, name)
);
CREATE INDEX report_authorizations_name ON report_authorizations (name);
