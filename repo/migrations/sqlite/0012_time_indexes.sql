-- recon schema v12 (SQLite): times are compared as instants, through
-- julianday(), because a time column holds whatever text its writer chose
-- (DEFAULT CURRENT_TIMESTAMP, ISO-8601 with T and Z, recon's own form) and
-- those forms do not compare as text. These indexes are on the expressions
-- the queries use, so the due scan, backfills, outbox claims and report
-- windows stay ranged; the plain-column indexes they replace are dropped.
CREATE INDEX IF NOT EXISTS idx_payment_orders_due_at ON payment_orders (status, julianday(next_query_at), id);
CREATE INDEX IF NOT EXISTS idx_payment_orders_created_at ON payment_orders (julianday(created_at), id);
CREATE INDEX IF NOT EXISTS idx_payment_orders_pending_created_at ON payment_orders (status, julianday(created_at), id);
CREATE INDEX IF NOT EXISTS idx_merchant_notifications_due_at ON merchant_notifications (status, julianday(next_attempt_at), id);
CREATE INDEX IF NOT EXISTS idx_recon_mismatches_detected_at ON recon_mismatches (julianday(detected_at));
CREATE INDEX IF NOT EXISTS idx_recon_mismatches_resolution_at ON recon_mismatches (resolution, julianday(detected_at));
CREATE INDEX IF NOT EXISTS idx_recon_runs_status_at ON recon_runs (status, julianday(heartbeat_at));
DROP INDEX IF EXISTS idx_payment_orders_due;
DROP INDEX IF EXISTS idx_payment_orders_created;
DROP INDEX IF EXISTS idx_merchant_notifications_due;
DROP INDEX IF EXISTS idx_recon_mismatches_detected;
DROP INDEX IF EXISTS idx_recon_mismatches_resolution;
DROP INDEX IF EXISTS idx_recon_runs_status;
