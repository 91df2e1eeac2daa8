-- The domains list's search (a substring of the name) as an index lookup: a trigram index
-- (pg_trgm, shipped with PostgreSQL and trusted since version 13, so a database owner may
-- create it). Without it (a user not allowed to create the extension) the search still works,
-- by reading the account's names: a notice says so, and the migration goes on.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm is not available (%): the domain search reads every name of an account', SQLERRM;
END
$$;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS domains_name_trigrams ON domains USING gin (domain gin_trgm_ops);
    END IF;
END
$$;
