-- recon schema v1 (MySQL 8 / MariaDB 10.6+). Times are UTC, money is integer minor units.
CREATE TABLE IF NOT EXISTS merchants (
  id            VARCHAR(64)   NOT NULL,
  name          VARCHAR(255)  NOT NULL DEFAULT '',
  notify_url    VARCHAR(2048) NOT NULL DEFAULT '',
  notify_secret VARCHAR(255)  NOT NULL DEFAULT '',
  created_at    DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS payment_orders (
  id               BIGINT        NOT NULL AUTO_INCREMENT,
  order_no         VARCHAR(64)   NOT NULL,
  merchant_id      VARCHAR(64)   NOT NULL,
  channel          VARCHAR(64)   NOT NULL,
  channel_txn_id   VARCHAR(128)  NULL,
  amount           BIGINT        NOT NULL,
  currency         CHAR(3)       NOT NULL,
  status           VARCHAR(16)   NOT NULL DEFAULT 'PENDING',
  version          BIGINT        NOT NULL DEFAULT 0,
  query_attempts   INT           NOT NULL DEFAULT 0,
  next_query_at    DATETIME(6)   NULL,
  last_query_error VARCHAR(1024) NULL,
  created_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at       DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  paid_at          DATETIME(6)   NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_payment_orders_order_no (order_no),
  -- due scan, stream 1: new orders never queried (next_query_at NULL, attempts 0), by id
  KEY idx_payment_orders_due_new (status, query_attempts, next_query_at, id),
  -- due scan, stream 2: scheduled orders, keyset on (next_query_at, id)
  KEY idx_payment_orders_due (status, next_query_at, id),
  -- backfill windows, keyset on (created_at, id)
  KEY idx_payment_orders_created (created_at, id),
  KEY idx_payment_orders_merchant (merchant_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS merchant_notifications (
  id              VARCHAR(64)   NOT NULL,
  order_id        BIGINT        NOT NULL,
  merchant_id     VARCHAR(64)   NOT NULL,
  event           VARCHAR(32)   NOT NULL,
  payload         TEXT          NOT NULL,
  status          VARCHAR(16)   NOT NULL DEFAULT 'PENDING',
  attempts        INT           NOT NULL DEFAULT 0,
  next_attempt_at DATETIME(6)   NOT NULL,
  locked_until    DATETIME(6)   NULL,
  locked_by       VARCHAR(128)  NULL,
  last_error      VARCHAR(1024) NULL,
  created_at      DATETIME(6)   NOT NULL,
  delivered_at    DATETIME(6)   NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_merchant_notifications_order_event (order_id, event),
  KEY idx_merchant_notifications_due (status, next_attempt_at),
  KEY idx_merchant_notifications_merchant (merchant_id, status, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS order_transitions (
  id           BIGINT      NOT NULL AUTO_INCREMENT,
  order_id     BIGINT      NOT NULL,
  from_status  VARCHAR(16) NOT NULL,
  to_status    VARCHAR(16) NOT NULL,
  from_version BIGINT      NOT NULL,
  to_version   BIGINT      NOT NULL,
  source       VARCHAR(32) NOT NULL,
  run_id       BIGINT      NULL,
  created_at   DATETIME(6) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_order_transitions_version (order_id, to_version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS recon_mismatches (
  id               BIGINT        NOT NULL AUTO_INCREMENT,
  run_id           BIGINT        NULL,
  order_id         BIGINT        NOT NULL,
  order_no         VARCHAR(64)   NOT NULL,
  merchant_id      VARCHAR(64)   NOT NULL,
  channel          VARCHAR(64)   NOT NULL,
  kind             VARCHAR(32)   NOT NULL,
  local_status     VARCHAR(16)   NOT NULL,
  channel_status   VARCHAR(16)   NOT NULL,
  local_amount     BIGINT        NOT NULL,
  channel_amount   BIGINT        NOT NULL,
  local_currency   CHAR(3)       NOT NULL,
  channel_currency VARCHAR(3)    NOT NULL DEFAULT '',
  channel_txn_id   VARCHAR(128)  NOT NULL DEFAULT '',
  detail           VARCHAR(1024) NOT NULL DEFAULT '',
  detected_at      DATETIME(6)   NOT NULL,
  last_seen_at     DATETIME(6)   NOT NULL,
  occurrences      INT           NOT NULL DEFAULT 1,
  resolution       VARCHAR(16)   NOT NULL DEFAULT 'OPEN',
  resolved_by      VARCHAR(128)  NULL,
  resolution_note  TEXT          NULL,
  resolved_at      DATETIME(6)   NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_recon_mismatches_order_kind (order_id, kind),
  KEY idx_recon_mismatches_detected (detected_at),
  KEY idx_recon_mismatches_resolution (resolution, detected_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS recon_runs (
  id           BIGINT        NOT NULL AUTO_INCREMENT,
  kind         VARCHAR(32)   NOT NULL,
  status       VARCHAR(16)   NOT NULL,
  dry_run      BOOLEAN       NOT NULL DEFAULT FALSE,
  shard        VARCHAR(16)   NOT NULL DEFAULT '',
  owner        VARCHAR(128)  NOT NULL DEFAULT '',
  started_at   DATETIME(6)   NOT NULL,
  heartbeat_at DATETIME(6)   NOT NULL,
  finished_at  DATETIME(6)   NULL,
  scanned      BIGINT        NOT NULL DEFAULT 0,
  paid         BIGINT        NOT NULL DEFAULT 0,
  failed       BIGINT        NOT NULL DEFAULT 0,
  closed       BIGINT        NOT NULL DEFAULT 0,
  rescheduled  BIGINT        NOT NULL DEFAULT 0,
  mismatches   BIGINT        NOT NULL DEFAULT 0,
  conflicts    BIGINT        NOT NULL DEFAULT 0,
  errors       BIGINT        NOT NULL DEFAULT 0,
  skipped      BIGINT        NOT NULL DEFAULT 0,
  delivered    BIGINT        NOT NULL DEFAULT 0,
  retried      BIGINT        NOT NULL DEFAULT 0,
  dead         BIGINT        NOT NULL DEFAULT 0,
  error        VARCHAR(1024) NOT NULL DEFAULT '',
  PRIMARY KEY (id),
  KEY idx_recon_runs_status (status, heartbeat_at),
  KEY idx_recon_runs_kind (kind, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS recon_leases (
  name        VARCHAR(128) NOT NULL,
  owner       VARCHAR(128) NOT NULL,
  acquired_at DATETIME(6)  NOT NULL,
  expires_at  DATETIME(6)  NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
