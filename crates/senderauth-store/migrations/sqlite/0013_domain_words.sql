-- The domains list's search finds names with a word (the text between dots and dashes) that
-- begins with the text typed: an index of those words (FTS5, unicode61 words, underscores kept
-- in them), kept in step with `domains` by triggers. It replaces the trigram index of 0012,
-- which was slow for names that share most of their letters (customer1, customer2, ...).
DROP TRIGGER domain_names_insert;
DROP TRIGGER domain_names_delete;
DROP TRIGGER domain_names_update;
DROP TABLE domain_names;
CREATE VIRTUAL TABLE domain_words USING fts5(domain, tokenize = "unicode61 tokenchars '_'", content = 'domains', content_rowid = 'id');
INSERT INTO domain_words (domain_words) VALUES ('rebuild');
CREATE TRIGGER domain_words_insert AFTER INSERT ON domains BEGIN
    INSERT INTO domain_words (rowid, domain) VALUES (new.id, new.domain);
END;
CREATE TRIGGER domain_words_delete AFTER DELETE ON domains BEGIN
    INSERT INTO domain_words (domain_words, rowid, domain) VALUES ('delete', old.id, old.domain);
END;
CREATE TRIGGER domain_words_update AFTER UPDATE OF domain ON domains BEGIN
    INSERT INTO domain_words (domain_words, rowid, domain) VALUES ('delete', old.id, old.domain);
    INSERT INTO domain_words (rowid, domain) VALUES (new.id, new.domain);
END;
