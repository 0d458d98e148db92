-- recon schema (MySQL 8 / MariaDB 10.6+): a statement is imported in chunks
-- under a row readers do not see (live NULL, status IMPORTING) until its
-- last chunk makes it the day's statement (live 1) in place of the previous
-- one, so the day keeps one visible row and a reader sees an import whole
-- or not at all. The lines of the import and of the statement it replaces
-- coexist until then: a line is unique per statement, and the import
-- itself refuses one that another day's statement holds.
ALTER TABLE channel_statements ADD COLUMN live TINYINT NULL DEFAULT 1,
  DROP INDEX uk_channel_statements_day, ADD UNIQUE KEY uk_channel_statements_day (channel, bill_date, live);
ALTER TABLE channel_statement_lines DROP INDEX uk_channel_statement_lines,
  ADD UNIQUE KEY uk_channel_statement_lines (channel, kind, channel_txn_id, refund_no, statement_id);
