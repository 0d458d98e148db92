package repo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/recon-dev/recon"
)

// OpenMismatches is how many mismatches of one kind are not RESOLVED (OPEN
// or ACKNOWLEDGED), and when the oldest of them was detected.
type OpenMismatches struct {
	Kind   recon.MismatchKind
	Count  int64
	Oldest time.Time
}

// CountOpenMismatches returns, for every kind with a mismatch not RESOLVED,
// how many there are and the detection time of the oldest, ordered by kind;
// kinds with none are left out. It reads the database's state, not a pass's
// counters, so what it returns is the same whichever process asks: the
// metrics gauges of one-shot passes stay right across runs.
func (s *Store) CountOpenMismatches(ctx context.Context) ([]OpenMismatches, error) {
	open := func() *gorm.DB {
		return s.db.WithContext(ctx).Model(&mismatchRow{}).Where("resolution <> ?", recon.ResolutionResolved)
	}
	var rows []struct {
		Kind string
		N    int64
	}
	if err := open().Select("kind, COUNT(*) AS n").Group("kind").Order("kind").Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("count open mismatches: %w", err)
	}
	out := make([]OpenMismatches, 0, len(rows))
	for _, r := range rows {
		// The oldest is read as a row, not as MIN(detected_at): SQLite
		// returns an aggregate of a DATETIME column as text.
		var oldest mismatchRow
		if err := open().Where("kind = ?", r.Kind).Select("detected_at").Order(s.at("detected_at")).
			Limit(1).Take(&oldest).Error; errors.Is(err, gorm.ErrRecordNotFound) {
			continue // resolved since they were counted
		} else if err != nil {
			return nil, fmt.Errorf("find the oldest open %s mismatch: %w", r.Kind, err)
		}
		out = append(out, OpenMismatches{Kind: recon.MismatchKind(r.Kind), Count: r.N, Oldest: oldest.DetectedAt.UTC()})
	}
	return out, nil
}
