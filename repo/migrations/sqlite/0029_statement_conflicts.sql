-- recon schema: a statement's reconciliation counts the lines the channel's
-- lookup did not confirm, and those whose transaction id is not their
-- order's (STATEMENT_CONFLICT).
ALTER TABLE channel_statements ADD COLUMN statement_conflicts BIGINT NOT NULL DEFAULT 0;
