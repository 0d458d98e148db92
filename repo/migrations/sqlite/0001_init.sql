-- recon schema v1 (SQLite). Times are UTC, money is integer minor units.
CREATE TABLE IF NOT EXISTS merchants (
  id            VARCHAR(64)   NOT NULL,
  name          VARCHAR(255)  NOT NULL DEFAULT '',
  notify_url    VARCHAR(2048) NOT NULL DEFAULT '',
  notify_secret VARCHAR(255)  NOT NULL DEFAULT '',
  created_at    DATETIME   NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS payment_orders (
  id               INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  order_no         VARCHAR(64)   NOT NULL,
  merchant_id      VARCHAR(64)   NOT NULL,
  channel          VARCHAR(64)   NOT NULL,
  channel_txn_id   VARCHAR(128)  NULL,
  amount           BIGINT        NOT NULL,
  currency         CHAR(3)       NOT NULL,
  status           VARCHAR(16)   NOT NULL DEFAULT 'PENDING',
  version          BIGINT        NOT NULL DEFAULT 0,
  query_attempts   INT           NOT NULL DEFAULT 0,
  next_query_at    DATETIME   NULL,
  last_query_error VARCHAR(1024) NULL,
  created_at       DATETIME   NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at       DATETIME   NOT NULL DEFAULT CURRENT_TIMESTAMP,
  paid_at          DATETIME   NULL
);

CREATE TABLE IF NOT EXISTS merchant_notifications (
  id              VARCHAR(64)   NOT NULL,
  order_id        BIGINT        NOT NULL,
  merchant_id     VARCHAR(64)   NOT NULL,
  event           VARCHAR(32)   NOT NULL,
  payload         TEXT          NOT NULL,
  status          VARCHAR(16)   NOT NULL DEFAULT 'PENDING',
  attempts        INT           NOT NULL DEFAULT 0,
  next_attempt_at DATETIME   NOT NULL,
  locked_until    DATETIME   NULL,
  locked_by       VARCHAR(128)  NULL,
  last_error      VARCHAR(1024) NULL,
  created_at      DATETIME   NOT NULL,
  delivered_at    DATETIME   NULL,
  PRIMARY KEY (id)
);

CREATE TABLE IF NOT EXISTS order_transitions (
  id           INTEGER     NOT NULL PRIMARY KEY AUTOINCREMENT,
  order_id     BIGINT      NOT NULL,
  from_status  VARCHAR(16) NOT NULL,
  to_status    VARCHAR(16) NOT NULL,
  from_version BIGINT      NOT NULL,
  to_version   BIGINT      NOT NULL,
  source       VARCHAR(32) NOT NULL,
  run_id       BIGINT      NULL,
  created_at   DATETIME NOT NULL
);

CREATE TABLE IF NOT EXISTS recon_mismatches (
  id               INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
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
  detected_at      DATETIME   NOT NULL,
  last_seen_at     DATETIME   NOT NULL,
  occurrences      INT           NOT NULL DEFAULT 1,
  resolution       VARCHAR(16)   NOT NULL DEFAULT 'OPEN',
  resolved_by      VARCHAR(128)  NULL,
  resolution_note  TEXT          NULL,
  resolved_at      DATETIME   NULL
);

CREATE TABLE IF NOT EXISTS recon_runs (
  id           INTEGER       NOT NULL PRIMARY KEY AUTOINCREMENT,
  kind         VARCHAR(32)   NOT NULL,
  status       VARCHAR(16)   NOT NULL,
  dry_run      BOOLEAN       NOT NULL DEFAULT 0,
  shard        VARCHAR(16)   NOT NULL DEFAULT '',
  owner        VARCHAR(128)  NOT NULL DEFAULT '',
  started_at   DATETIME   NOT NULL,
  heartbeat_at DATETIME   NOT NULL,
  finished_at  DATETIME   NULL,
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
  error        VARCHAR(1024) NOT NULL DEFAULT ''
);

CREATE TABLE IF NOT EXISTS recon_leases (
  name        VARCHAR(128) NOT NULL,
  owner       VARCHAR(128) NOT NULL,
  acquired_at DATETIME  NOT NULL,
  expires_at  DATETIME  NOT NULL,
  PRIMARY KEY (name)
);

CREATE UNIQUE INDEX IF NOT EXISTS uk_payment_orders_order_no ON payment_orders (order_no);
CREATE INDEX IF NOT EXISTS idx_payment_orders_due_new ON payment_orders (status, query_attempts, next_query_at, id);
CREATE INDEX IF NOT EXISTS idx_payment_orders_due ON payment_orders (status, next_query_at, id);
CREATE INDEX IF NOT EXISTS idx_payment_orders_created ON payment_orders (created_at, id);
CREATE INDEX IF NOT EXISTS idx_payment_orders_merchant ON payment_orders (merchant_id, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS uk_merchant_notifications_order_event ON merchant_notifications (order_id, event);
CREATE INDEX IF NOT EXISTS idx_merchant_notifications_due ON merchant_notifications (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS idx_merchant_notifications_merchant ON merchant_notifications (merchant_id, status, created_at);
CREATE UNIQUE INDEX IF NOT EXISTS uk_order_transitions_version ON order_transitions (order_id, to_version);
CREATE UNIQUE INDEX IF NOT EXISTS uk_recon_mismatches_order_kind ON recon_mismatches (order_id, kind);
CREATE INDEX IF NOT EXISTS idx_recon_mismatches_detected ON recon_mismatches (detected_at);
CREATE INDEX IF NOT EXISTS idx_recon_mismatches_resolution ON recon_mismatches (resolution, detected_at);
CREATE INDEX IF NOT EXISTS idx_recon_runs_status ON recon_runs (status, heartbeat_at);
CREATE INDEX IF NOT EXISTS idx_recon_runs_kind ON recon_runs (kind, started_at);
