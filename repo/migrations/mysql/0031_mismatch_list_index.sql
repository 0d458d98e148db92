-- recon schema (MySQL 8 / MariaDB 10.6+): the console's list of unresolved
-- mismatches (resolution <> 'RESOLVED', in detected_at, id order) walks this
-- index in order and skips a deep page's rows inside it. On the
-- (resolution, detected_at) index the two unresolved states are two ranges,
-- and every row of them was sorted before a page was cut: 150 ms for the
-- last of 4,000 pages, against 55 ms here. It replaces the index on
-- detected_at alone, of which it is a prefix.
ALTER TABLE recon_mismatches DROP INDEX idx_recon_mismatches_detected,
  ADD KEY idx_recon_mismatches_list (detected_at, id, resolution);
