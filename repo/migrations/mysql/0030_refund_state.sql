-- recon schema (MySQL 8 / MariaDB 10.6+): recon's bookkeeping of the refunds
-- of a mapped refunds table (config key refunds), which recon never alters,
-- shaped as recon_order_state is for mapped orders: id is the refund's ref in
-- recon's own tables (merchant_notifications.refund_id, refund_transitions);
-- order_key is the team's refund id as text. Unused with recon's own
-- refund_orders.
CREATE TABLE IF NOT EXISTS recon_refund_state (
  id               BIGINT        NOT NULL AUTO_INCREMENT,
  order_key        VARCHAR(64)   NOT NULL,
  active           BOOLEAN       NOT NULL DEFAULT TRUE,
  version          BIGINT        NOT NULL DEFAULT 0,
  query_attempts   INT           NOT NULL DEFAULT 0,
  next_query_at    DATETIME(6)   NULL,
  last_query_error VARCHAR(1024) NULL,
  created_at       DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_recon_refund_state_key (order_key),
  KEY idx_recon_refund_state_due_new (active, query_attempts, next_query_at, id),
  KEY idx_recon_refund_state_due (active, next_query_at, id),
  KEY idx_recon_refund_state_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
