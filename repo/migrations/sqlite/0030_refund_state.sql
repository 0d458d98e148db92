-- recon schema (SQLite): recon's bookkeeping of the refunds of a mapped
-- refunds table (config key refunds). See the MySQL migration of the same
-- number.
CREATE TABLE IF NOT EXISTS recon_refund_state (
  id               INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  order_key        VARCHAR(64)   NOT NULL,
  active           BOOLEAN       NOT NULL DEFAULT 1,
  version          BIGINT        NOT NULL DEFAULT 0,
  query_attempts   INT           NOT NULL DEFAULT 0,
  next_query_at    DATETIME      NULL,
  last_query_error VARCHAR(1024) NULL,
  created_at       DATETIME      NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uk_recon_refund_state_key ON recon_refund_state (order_key);
CREATE INDEX IF NOT EXISTS idx_recon_refund_state_due_new ON recon_refund_state (active, query_attempts, next_query_at, id);
CREATE INDEX IF NOT EXISTS idx_recon_refund_state_due ON recon_refund_state (active, next_query_at, id);
CREATE INDEX IF NOT EXISTS idx_recon_refund_state_created ON recon_refund_state (created_at);
