-- recon schema (MySQL 8 / MariaDB 10.6+): one row per order (recon's ref of
-- it: payment_orders.id, or recon_order_state.id with a mapped orders table)
-- of which recon has settled a refund as SUCCEEDED; settlements counts those
-- settlements. Every such settlement writes its order's row in the same
-- transaction as it sums the order's other succeeded refunds, so two
-- settlements of one order on two nodes of a Galera cluster, which do not see
-- each other's read locks, conflict on this row at certification: one is
-- aborted and rerun, and then sees the other's refund.
CREATE TABLE IF NOT EXISTS recon_refund_settlements (
  order_id     BIGINT NOT NULL,
  settlements  BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (order_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
