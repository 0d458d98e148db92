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
