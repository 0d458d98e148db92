-- recon schema v14 (SQLite): channel statements (CONTRACT §3, §8). One
-- statement per (channel, bill_date); its lines are replaced together when a
-- day is imported again. Counters of the last reconciliation are kept on the
-- statement for the report.
CREATE TABLE IF NOT EXISTS channel_statements (
  id                INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  channel           VARCHAR(64)   NOT NULL,
  bill_date         VARCHAR(10)   NOT NULL,
  status            VARCHAR(16)   NOT NULL,
  source            VARCHAR(16)   NOT NULL,
  origin            VARCHAR(1024) NOT NULL DEFAULT '',
  file_sha256       CHAR(64)      NOT NULL DEFAULT '',
  file_size         BIGINT        NOT NULL DEFAULT 0,
  line_count        BIGINT        NOT NULL DEFAULT 0,
  payments_count    BIGINT        NULL,
  payments_amount   BIGINT        NULL,
  refunds_count     BIGINT        NULL,
  refunds_amount    BIGINT        NULL,
  fees_amount       BIGINT        NULL,
  lines_payments    BIGINT        NOT NULL DEFAULT 0,
  lines_refunds     BIGINT        NOT NULL DEFAULT 0,
  lines_fees        BIGINT        NOT NULL DEFAULT 0,
  matched           BIGINT        NOT NULL DEFAULT 0,
  settled           BIGINT        NOT NULL DEFAULT 0,
  channel_only      BIGINT        NOT NULL DEFAULT 0,
  local_only        BIGINT        NOT NULL DEFAULT 0,
  amount_mismatches BIGINT        NOT NULL DEFAULT 0,
  refund_mismatches BIGINT        NOT NULL DEFAULT 0,
  fee_mismatches    BIGINT        NOT NULL DEFAULT 0,
  status_mismatches BIGINT        NOT NULL DEFAULT 0,
  new_mismatches    BIGINT        NOT NULL DEFAULT 0,
  run_id            BIGINT        NULL,
  error             VARCHAR(1024) NOT NULL DEFAULT '',
  imported_at       DATETIME      NULL,
  reconciled_at     DATETIME      NULL,
  updated_at        DATETIME      NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uk_channel_statements_day ON channel_statements (channel, bill_date);
CREATE INDEX IF NOT EXISTS idx_channel_statements_date ON channel_statements (bill_date);

CREATE TABLE IF NOT EXISTS channel_statement_lines (
  id             INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  statement_id   BIGINT       NOT NULL,
  channel        VARCHAR(64)  NOT NULL,
  bill_date      VARCHAR(10)  NOT NULL,
  line_no        BIGINT       NOT NULL,
  kind           VARCHAR(8)   NOT NULL,
  order_no       VARCHAR(64)  NOT NULL DEFAULT '',
  channel_txn_id VARCHAR(128) NOT NULL,
  refund_no      VARCHAR(128) NOT NULL DEFAULT '',
  amount         BIGINT       NOT NULL,
  fee            BIGINT       NOT NULL DEFAULT 0,
  currency       CHAR(3)      NOT NULL,
  occurred_at    DATETIME     NOT NULL,
  order_id       BIGINT       NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uk_channel_statement_lines ON channel_statement_lines (channel, kind, channel_txn_id, refund_no);
CREATE INDEX IF NOT EXISTS idx_channel_statement_lines_statement ON channel_statement_lines (statement_id, kind, id);
CREATE INDEX IF NOT EXISTS idx_channel_statement_lines_order ON channel_statement_lines (order_id, kind);

-- CHANNEL_ONLY findings have no local order: they are kept one per
-- (channel, transaction id) in subject, with order_id 0.
ALTER TABLE recon_mismatches ADD COLUMN subject VARCHAR(200) NOT NULL DEFAULT '';
DROP INDEX IF EXISTS uk_recon_mismatches_order_kind;
CREATE UNIQUE INDEX IF NOT EXISTS uk_recon_mismatches_order_kind ON recon_mismatches (order_id, kind, subject);

-- Statement lines find their order by transaction id when they carry no order
-- number (Stripe); LOCAL_ONLY looks for a channel's orders paid in a day.
CREATE INDEX IF NOT EXISTS idx_payment_orders_txn ON payment_orders (channel_txn_id);
CREATE INDEX IF NOT EXISTS idx_payment_orders_paid ON payment_orders (channel, paid_at);
