-- How far the zone's changes have been pushed to each external primary (RFC 2136 updates).
CREATE TABLE zone_push_progress (
    target TEXT PRIMARY KEY,
    applied BIGINT NOT NULL
);
