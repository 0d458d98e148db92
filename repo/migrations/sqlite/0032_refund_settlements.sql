-- recon schema (SQLite): one row per order of which recon has settled a
-- refund as SUCCEEDED. See the MySQL migration of the same number.
CREATE TABLE IF NOT EXISTS recon_refund_settlements (
  order_id     BIGINT NOT NULL PRIMARY KEY,
  settlements  BIGINT NOT NULL DEFAULT 0
);
