-- recon schema (MySQL 8 / MariaDB 10.6+): a statement run records its
-- channel (up to 64 characters) as its shard, the one its lease names.
ALTER TABLE recon_runs MODIFY shard VARCHAR(64) NOT NULL DEFAULT '';
