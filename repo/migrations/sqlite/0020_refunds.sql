-- recon schema (SQLite): refund orders (CONTRACT §10). The payment service
-- inserts a row when it asks the channel to refund; recon moves it only out
-- of PENDING, with the guarded update, an audit row in refund_transitions
-- and an outbox row. The due scan uses the same two streams and keysets as
-- payment_orders (times compared through julianday, as in v12).
CREATE TABLE IF NOT EXISTS refund_orders (
  id                INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
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
  next_query_at     DATETIME      NULL,
  last_query_error  VARCHAR(1024) NULL,
  created_at        DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at        DATETIME      NOT NULL DEFAULT CURRENT_TIMESTAMP,
  succeeded_at      DATETIME      NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uk_refund_orders_refund_no ON refund_orders (refund_no);
CREATE INDEX IF NOT EXISTS idx_refund_orders_due_new ON refund_orders (status, query_attempts, next_query_at, id);
CREATE INDEX IF NOT EXISTS idx_refund_orders_due_at ON refund_orders (status, julianday(next_query_at), id);
CREATE INDEX IF NOT EXISTS idx_refund_orders_created_at ON refund_orders (julianday(created_at), id);
CREATE INDEX IF NOT EXISTS idx_refund_orders_pending_created_at ON refund_orders (status, julianday(created_at), id);
CREATE INDEX IF NOT EXISTS idx_refund_orders_order ON refund_orders (order_id, status);

CREATE TABLE IF NOT EXISTS refund_transitions (
  id           INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
  refund_id    BIGINT      NOT NULL,
  from_status  VARCHAR(16) NOT NULL,
  to_status    VARCHAR(16) NOT NULL,
  from_version BIGINT      NOT NULL,
  to_version   BIGINT      NOT NULL,
  source       VARCHAR(32) NOT NULL,
  run_id       BIGINT      NULL,
  created_at   DATETIME    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uk_refund_transitions_version ON refund_transitions (refund_id, to_version);

-- A refund's mismatches carry its number; they are kept one per (refund,
-- kind) through subject ("refund:" and the number).
ALTER TABLE recon_mismatches ADD COLUMN refund_no VARCHAR(64) NOT NULL DEFAULT '';

-- The outbox holds one row per (order, event) for order.* events and per
-- (refund, event) for refund.* events: refund_id is 0 on order events (every
-- row written before this migration), the refund's id on refund events.
ALTER TABLE merchant_notifications ADD COLUMN refund_id BIGINT NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS uk_merchant_notifications_order_event;
CREATE UNIQUE INDEX IF NOT EXISTS uk_merchant_notifications_order_event ON merchant_notifications (order_id, event, refund_id);
