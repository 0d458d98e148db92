-- recon schema v3 (SQLite): recon_runs.deferred counts the work a pass left
-- due without trying it: orders of a channel paused by its circuit breaker,
-- notifications of a merchant paused by its breaker.
ALTER TABLE recon_runs ADD COLUMN deferred BIGINT NOT NULL DEFAULT 0;
