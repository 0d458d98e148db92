-- recon schema (SQLite): every channel notification recon received and
-- verified, once per (channel, event_id). See the MySQL migration of the
-- same number.
CREATE TABLE IF NOT EXISTS recon_callbacks (
  id           INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
  channel      VARCHAR(64)  NOT NULL,
  event_id     VARCHAR(128) NOT NULL,
  order_no     VARCHAR(64)  NOT NULL DEFAULT '',
  refund_no    VARCHAR(64)  NULL,
  order_id     BIGINT       NULL,
  outcome      VARCHAR(16)  NOT NULL,
  duplicates   INT          NOT NULL DEFAULT 0,
  paid_at      DATETIME     NULL,
  received_at  DATETIME     NOT NULL,
  handled_at   DATETIME     NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS uk_recon_callbacks_event ON recon_callbacks (channel, event_id);
CREATE INDEX IF NOT EXISTS idx_recon_callbacks_received ON recon_callbacks (channel, received_at);
CREATE INDEX IF NOT EXISTS idx_recon_callbacks_order ON recon_callbacks (order_id);
CREATE INDEX IF NOT EXISTS idx_order_transitions_created ON order_transitions (created_at);
