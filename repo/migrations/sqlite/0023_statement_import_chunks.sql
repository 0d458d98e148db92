-- recon schema (SQLite): a statement is imported in chunks under a row
-- readers do not see (live NULL, status IMPORTING) until its last chunk
-- makes it the day's statement (live 1) in place of the previous one, so the
-- day keeps one visible row and a reader sees an import whole or not at all.
-- The lines of the import and of the statement it replaces coexist until
-- then: a line is unique per statement, and the import itself refuses one
-- that another day's statement holds.
ALTER TABLE channel_statements ADD COLUMN live INTEGER DEFAULT 1;
DROP INDEX IF EXISTS uk_channel_statements_day;
CREATE UNIQUE INDEX IF NOT EXISTS uk_channel_statements_day ON channel_statements (channel, bill_date, live);
DROP INDEX IF EXISTS uk_channel_statement_lines;
CREATE UNIQUE INDEX IF NOT EXISTS uk_channel_statement_lines ON channel_statement_lines (channel, kind, channel_txn_id, refund_no, statement_id);
