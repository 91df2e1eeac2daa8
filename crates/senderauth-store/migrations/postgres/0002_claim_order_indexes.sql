-- Claims take due rows in (next_check_at, id) order. With only next_check_at indexed,
-- PostgreSQL sorted every due row sharing the earliest time to pick the first few (hundreds of
-- milliseconds per claim when many domains fall due at once, e.g. after an import). SQLite's
-- indexes end with the rowid, so it needs no such change.
DROP INDEX domains_due;
CREATE INDEX domains_due ON domains (next_check_at, id);
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at, id);
