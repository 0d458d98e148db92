-- recon schema (MySQL 8 / MariaDB 10.6+): recon's bookkeeping of the orders of
-- a mapped orders table (config key orders), which recon never alters. id is
-- the order's ref in recon's own tables (merchant_notifications.order_id,
-- order_transitions, recon_mismatches); order_key is the team's id as text;
-- created_at is the order's, copied when recon first saw it. active is false
-- once the order left PENDING; version counts recon's transitions of it (the
-- audit versions when the table has no version column). Unused with recon's
-- own payment_orders.
CREATE TABLE IF NOT EXISTS recon_order_state (
  id               BIGINT        NOT NULL AUTO_INCREMENT,
  order_key        VARCHAR(64)   NOT NULL,
  active           BOOLEAN       NOT NULL DEFAULT TRUE,
  version          BIGINT        NOT NULL DEFAULT 0,
  query_attempts   INT           NOT NULL DEFAULT 0,
  next_query_at    DATETIME(6)   NULL,
  last_query_error VARCHAR(1024) NULL,
  created_at       DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_recon_order_state_key (order_key),
  KEY idx_recon_order_state_due_new (active, query_attempts, next_query_at, id),
  KEY idx_recon_order_state_due (active, next_query_at, id),
  KEY idx_recon_order_state_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
