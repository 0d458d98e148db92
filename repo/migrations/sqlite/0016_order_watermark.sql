-- recon schema (SQLite): how far recon has registered the pending orders of a
-- mapped orders table. See the MySQL migration of the same number.
CREATE TABLE IF NOT EXISTS recon_order_watermark (
  name             VARCHAR(64)  NOT NULL PRIMARY KEY,
  registered_until DATETIME     NOT NULL
);
