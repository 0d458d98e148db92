package repo

import (
	"context"

	"gorm.io/gorm"
)

// RetryTx exposes retryTx to the external tests, which run it against real
// conflicts on every database.
func (s *Store) RetryTx(ctx context.Context, op string, fn func(tx *gorm.DB) error) error {
	return s.retryTx(ctx, op, fn)
}

// SetAfterRefundSums makes s call h inside every refund batch's
// transaction once the batch has read what its orders' refunds add up to
// (nil: no call), so that a test can hold two batches there at once.
func SetAfterRefundSums(s *Store, h func()) { s.afterRefundSums = h }

// SetMatchChunkLines makes MatchStatementLines of s match at most n lines
// per transaction (0: the default), so that a test need not store a chunk's
// worth of lines to see several chunks.
func SetMatchChunkLines(s *Store, n int) { s.matchChunk = n }

// AddMigration makes Migrate of s apply m after the embedded migrations.
func AddMigration(s *Store, m Migration) { s.extraMigrations = append(s.extraMigrations, m) }
