-- The domains list's search (a substring of the name): a trigram index over the names (FTS5's
-- trigram tokenizer, kept in step with `domains` by triggers), for a name that few domains
-- share; a common one is found by reading the list in order.
CREATE VIRTUAL TABLE domain_names USING fts5(domain, tokenize = 'trigram', content = 'domains', content_rowid = 'id');
INSERT INTO domain_names (domain_names) VALUES ('rebuild');
CREATE TRIGGER domain_names_insert AFTER INSERT ON domains BEGIN
    INSERT INTO domain_names (rowid, domain) VALUES (new.id, new.domain);
END;
CREATE TRIGGER domain_names_delete AFTER DELETE ON domains BEGIN
    INSERT INTO domain_names (domain_names, rowid, domain) VALUES ('delete', old.id, old.domain);
END;
CREATE TRIGGER domain_names_update AFTER UPDATE OF domain ON domains BEGIN
    INSERT INTO domain_names (domain_names, rowid, domain) VALUES ('delete', old.id, old.domain);
    INSERT INTO domain_names (rowid, domain) VALUES (new.id, new.domain);
END;
