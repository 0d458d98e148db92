-- recon schema (MySQL 8 / MariaDB 10.6+): a pass records the refunds it settled beside its orders
-- (CONTRACT §10: refunds_scanned, refunds_succeeded, refunds_failed,
-- refunds_rescheduled), and how many refunds it skipped because their
-- channel cannot look refunds up (refunds_unsupported).
ALTER TABLE recon_runs ADD COLUMN refunds_scanned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recon_runs ADD COLUMN refunds_succeeded BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recon_runs ADD COLUMN refunds_failed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recon_runs ADD COLUMN refunds_rescheduled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE recon_runs ADD COLUMN refunds_unsupported BIGINT NOT NULL DEFAULT 0;
