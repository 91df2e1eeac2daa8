-- Demo mode's sandbox DNS host: customer zones the embedded DNS server hosts, each owned by
-- the account that made it, and the records typed into them. Changes go through zone_changes
-- like the platform's own records.
CREATE TABLE sandbox_zones (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    apex TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE INDEX sandbox_zones_account ON sandbox_zones (account_id);

CREATE TABLE sandbox_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    zone_id INTEGER NOT NULL REFERENCES sandbox_zones (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX sandbox_records_zone ON sandbox_records (zone_id);
CREATE INDEX sandbox_records_name ON sandbox_records (name);
