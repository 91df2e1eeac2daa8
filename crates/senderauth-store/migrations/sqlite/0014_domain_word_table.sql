-- The domains list's search finds names with a word (the text between dots and dashes) that
-- begins with the text typed: a table of every (account, word, name), in that order, kept in
-- step with `domains` by triggers. The names with one word come in name order from one range of
-- it, however many they are, so a page is read without sorting. It replaces the FTS5 index of
-- 0013, which handed back every name with the word and left them to be sorted (100 ms for a
-- word a third of 100,000 names have). The words are split with json_each (a trigger may not
-- hold a WITH clause), a backslash or a double quote escaped first.
DROP TRIGGER domain_words_insert;
DROP TRIGGER domain_words_delete;
DROP TRIGGER domain_words_update;
DROP TABLE domain_words;
CREATE TABLE domain_words (
    account_id INTEGER NOT NULL,
    word TEXT NOT NULL,
    domain TEXT NOT NULL,
    PRIMARY KEY (account_id, word, domain)
) WITHOUT ROWID;
INSERT OR IGNORE INTO domain_words (account_id, word, domain)
    SELECT d.account_id, lower(w.value), d.domain
    FROM domains d, json_each('["' || replace(replace(replace(replace(d.domain, '\', '\\'), '"', '\"'), '-', '.'), '.', '","') || '"]') w
    WHERE w.value <> '';
CREATE TRIGGER domain_words_insert AFTER INSERT ON domains BEGIN
    INSERT OR IGNORE INTO domain_words (account_id, word, domain)
        SELECT new.account_id, lower(w.value), new.domain
        FROM json_each('["' || replace(replace(replace(replace(new.domain, '\', '\\'), '"', '\"'), '-', '.'), '.', '","') || '"]') w
        WHERE w.value <> '';
END;
CREATE TRIGGER domain_words_delete AFTER DELETE ON domains BEGIN
    DELETE FROM domain_words WHERE account_id = old.account_id AND domain = old.domain;
END;
CREATE TRIGGER domain_words_update AFTER UPDATE OF account_id, domain ON domains BEGIN
    DELETE FROM domain_words WHERE account_id = old.account_id AND domain = old.domain;
    INSERT OR IGNORE INTO domain_words (account_id, word, domain)
        SELECT new.account_id, lower(w.value), new.domain
        FROM json_each('["' || replace(replace(replace(replace(new.domain, '\', '\\'), '"', '\"'), '-', '.'), '.', '","') || '"]') w
        WHERE w.value <> '';
END;
