-- recon schema v14 (MySQL 8 / MariaDB 10.6+): channel statements (CONTRACT §3,
-- §8). One statement per (channel, bill_date); its lines are replaced
-- together when a day is imported again. Amounts are minor units; a fee keeps
-- the sign the channel writes. Counters of the last reconciliation are kept
-- on the statement for the report.
CREATE TABLE IF NOT EXISTS channel_statements (
  id                BIGINT        NOT NULL AUTO_INCREMENT,
  channel           VARCHAR(64)   NOT NULL,
  bill_date         DATE          NOT NULL,
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
  imported_at       DATETIME(6)   NULL,
  reconciled_at     DATETIME(6)   NULL,
  updated_at        DATETIME(6)   NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_channel_statements_day (channel, bill_date),
  KEY idx_channel_statements_date (bill_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS channel_statement_lines (
  id             BIGINT       NOT NULL AUTO_INCREMENT,
  statement_id   BIGINT       NOT NULL,
  channel        VARCHAR(64)  NOT NULL,
  bill_date      DATE         NOT NULL,
  line_no        BIGINT       NOT NULL,
  kind           VARCHAR(8)   NOT NULL,
  order_no       VARCHAR(64)  NOT NULL DEFAULT '',
  channel_txn_id VARCHAR(128) NOT NULL,
  refund_no      VARCHAR(128) NOT NULL DEFAULT '',
  amount         BIGINT       NOT NULL,
  fee            BIGINT       NOT NULL DEFAULT 0,
  currency       CHAR(3)      NOT NULL,
  occurred_at    DATETIME(6)  NOT NULL,
  order_id       BIGINT       NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_channel_statement_lines (channel, kind, channel_txn_id, refund_no),
  KEY idx_channel_statement_lines_statement (statement_id, kind, id),
  KEY idx_channel_statement_lines_order (order_id, kind)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- CHANNEL_ONLY findings have no local order: they are kept one per
-- (channel, transaction id) in subject, with order_id 0.
ALTER TABLE recon_mismatches ADD COLUMN subject VARCHAR(200) NOT NULL DEFAULT '';
ALTER TABLE recon_mismatches DROP INDEX uk_recon_mismatches_order_kind, ADD UNIQUE KEY uk_recon_mismatches_order_kind (order_id, kind, subject);

-- Statement lines find their order by transaction id when they carry no order
-- number (Stripe); LOCAL_ONLY looks for a channel's orders paid in a day.
CREATE INDEX idx_payment_orders_txn ON payment_orders (channel_txn_id);
CREATE INDEX idx_payment_orders_paid ON payment_orders (channel, paid_at);
