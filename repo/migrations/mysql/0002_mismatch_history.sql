-- recon schema v2 (MySQL 8 / MariaDB 10.6+): the finance history of every
-- mismatch, so a mismatch reopened after being resolved keeps who resolved
-- it, when and why. action is OPENED, ACKNOWLEDGED, RESOLVED or REOPENED;
-- actor is who did it ("recon" for the job); run_id is the pass that
-- detected it, if any.
CREATE TABLE IF NOT EXISTS recon_mismatch_events (
  id          BIGINT       NOT NULL AUTO_INCREMENT,
  mismatch_id BIGINT       NOT NULL,
  action      VARCHAR(16)  NOT NULL,
  actor       VARCHAR(128) NOT NULL DEFAULT '',
  note        TEXT         NULL,
  run_id      BIGINT       NULL,
  created_at  DATETIME(6)  NOT NULL,
  PRIMARY KEY (id),
  KEY idx_recon_mismatch_events_mismatch (mismatch_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Mismatches recorded before this migration get their history from the row.
INSERT INTO recon_mismatch_events (mismatch_id, action, actor, note, run_id, created_at)
SELECT m.id, 'OPENED', 'recon', NULL, m.run_id, m.detected_at FROM recon_mismatches m
 WHERE NOT EXISTS (SELECT 1 FROM recon_mismatch_events e WHERE e.mismatch_id = m.id);

INSERT INTO recon_mismatch_events (mismatch_id, action, actor, note, run_id, created_at)
SELECT m.id, 'RESOLVED', COALESCE(m.resolved_by, ''), m.resolution_note, NULL, COALESCE(m.resolved_at, m.last_seen_at)
  FROM recon_mismatches m
 WHERE m.resolution = 'RESOLVED'
   AND NOT EXISTS (SELECT 1 FROM recon_mismatch_events e WHERE e.mismatch_id = m.id AND e.action = 'RESOLVED');
