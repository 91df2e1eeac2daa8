-- The domains list's search finds names with a word (the text between dots and dashes) that
-- begins with the text typed: a trigram index on the name with every word marked by a leading
-- dot, so that `LIKE '%.shop%'` is an index lookup. It replaces the index of 0013 on the bare
-- name. Without pg_trgm the search reads the names instead.
DROP INDEX IF EXISTS domains_name_trigrams;
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        CREATE INDEX IF NOT EXISTS domains_word_trigrams ON domains USING gin (('.' || replace(domain, '-', '.')) gin_trgm_ops);
    END IF;
END
$$;
