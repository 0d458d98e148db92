-- recon schema (SQLite): the console's list of unresolved mismatches
-- (resolution <> 'RESOLVED', in detected_at, id order) walks this index in
-- order and skips a deep page's rows inside it, instead of sorting every
-- unresolved row before a page is cut. It replaces the index on
-- julianday(detected_at) alone, of which it is a prefix.
CREATE INDEX IF NOT EXISTS idx_recon_mismatches_list ON recon_mismatches (julianday(detected_at), id, resolution);
DROP INDEX IF EXISTS idx_recon_mismatches_detected_at;
