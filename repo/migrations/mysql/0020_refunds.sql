-- recon schema (MySQL 8 / MariaDB 10.6+): refund orders (CONTRACT §10). The
-- payment service inserts a row when it asks the channel to refund; recon
-- moves it only out of PENDING, with the guarded update, an audit row in
-- refund_transitions and an outbox row. The due scan uses the same two
-- streams and keysets as payment_orders.
CREATE TABLE IF NOT EXISTS refund_orders (
  id                BIGINT        NOT NULL AUTO_INCREMENT,
  refund_no         VARCHAR(64)   NOT NULL,
  order_id          BIGINT        NOT NULL,
  merchant_id       VARCHAR(64)   NOT NULL,
  channel           VARCHAR(64)   NOT NULL,
  channel_refund_id VARCHAR(128)  NULL,
  amount            BIGINT        NOT NULL,
  currency          CHAR(3)       NOT NULL,
  status            VARCHAR(16)   NOT NULL DEFAULT 'PENDING',
  version           BIGINT        NOT NULL DEFAULT 0,
  query_attempts    INT           NOT NULL DEFAULT 0,
  next_query_at     DATETIME(6)   NULL,
  last_query_error  VARCHAR(1024) NULL,
  created_at        DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at        DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  succeeded_at      DATETIME(6)   NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_refund_orders_refund_no (refund_no),
  KEY idx_refund_orders_due_new (status, query_attempts, next_query_at, id),
  KEY idx_refund_orders_due (status, next_query_at, id),
  KEY idx_refund_orders_created (created_at, id),
  -- an order's succeeded refunds, for over-refund checks
  KEY idx_refund_orders_order (order_id, status)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS refund_transitions (
  id           BIGINT      NOT NULL AUTO_INCREMENT,
  refund_id    BIGINT      NOT NULL,
  from_status  VARCHAR(16) NOT NULL,
  to_status    VARCHAR(16) NOT NULL,
  from_version BIGINT      NOT NULL,
  to_version   BIGINT      NOT NULL,
  source       VARCHAR(32) NOT NULL,
  run_id       BIGINT      NULL,
  created_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_refund_transitions_version (refund_id, to_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- A refund's mismatches carry its number; they are kept one per (refund,
-- kind) through subject ("refund:" and the number).
ALTER TABLE recon_mismatches ADD COLUMN refund_no VARCHAR(64) NOT NULL DEFAULT '';

-- The outbox holds one row per (order, event) for order.* events and per
-- (refund, event) for refund.* events: refund_id is 0 on order events (every
-- row written before this migration), the refund's id on refund events.
ALTER TABLE merchant_notifications ADD COLUMN refund_id BIGINT NOT NULL DEFAULT 0,
  DROP INDEX uk_merchant_notifications_order_event,
  ADD UNIQUE KEY uk_merchant_notifications_order_event (order_id, event, refund_id);
