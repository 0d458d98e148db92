-- recon schema (MySQL 8 / MariaDB 10.6+): every channel notification recon
-- received and verified, once per (channel, event_id) (CONTRACT §11). It is
-- written in the transaction of the notification's guarded commit, so a
-- duplicate finds it and takes no effect. outcome is SETTLED, MISMATCH,
-- UNCHANGED, IGNORED or ORDER_UNKNOWN (refused: a retry of the same event is
-- handled as new); duplicates counts the deliveries after the first;
-- paid_at is the channel's paid time, for lateness; order_id is recon's ref
-- of the order (NULL while unknown).
CREATE TABLE IF NOT EXISTS recon_callbacks (
  id           BIGINT       NOT NULL AUTO_INCREMENT,
  channel      VARCHAR(64)  NOT NULL,
  event_id     VARCHAR(128) NOT NULL,
  order_no     VARCHAR(64)  NOT NULL DEFAULT '',
  refund_no    VARCHAR(64)  NULL,
  order_id     BIGINT       NULL,
  outcome      VARCHAR(16)  NOT NULL,
  duplicates   INT          NOT NULL DEFAULT 0,
  paid_at      DATETIME(6)  NULL,
  received_at  DATETIME(6)  NOT NULL,
  handled_at   DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uk_recon_callbacks_event (channel, event_id),
  KEY idx_recon_callbacks_received (channel, received_at),
  KEY idx_recon_callbacks_order (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Settlements by source per channel and day read the audit rows by time.
CREATE INDEX idx_order_transitions_created ON order_transitions (created_at);
