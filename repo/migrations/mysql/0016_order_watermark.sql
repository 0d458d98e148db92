-- recon schema (MySQL 8 / MariaDB 10.6+): how far recon has registered the
-- pending orders of a mapped orders table (by their created_at), so a pass
-- looks for new ones from there (less a margin for late commits) whatever
-- single orders were registered meanwhile (recon check, statements).
CREATE TABLE IF NOT EXISTS recon_order_watermark (
  name             VARCHAR(64)  NOT NULL,
  registered_until DATETIME(6)  NOT NULL,
  PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
