package repo

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"
)

// On SQLite the scans compare times through julianday(); each page must
// still be one ranged index search, not a table scan or a sort, so that its
// cost follows the page and not the table.
func TestSQLiteScanPagesAreIndexSearches(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, SQLite, filepath.Join(t.TempDir(), "plan.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cur := Cursor{at: now.Add(-time.Hour), id: 7}
	due := Scan{Now: now, CreatedBefore: now}
	backfill := Scan{Backfill: true, From: now.Add(-24 * time.Hour), To: now}
	verify := backfill
	verify.IncludeTerminal = true
	cases := map[string]*gorm.DB{}
	dry := s.db.Session(&gorm.Session{DryRun: true})
	var rows []orderRow
	cases["due, never queried"] = s.scanQuery(dry, due, Cursor{stream: streamNew, id: 7}, 10).Find(&rows)
	cases["due, scheduled"] = s.scanQuery(dry, due, Cursor{stream: streamScheduled, at: cur.at, id: 7}, 10).Find(&rows)
	cases["backfill"] = s.scanQuery(dry, backfill, cur, 10).Find(&rows)
	cases["verification backfill"] = s.scanQuery(dry, verify, cur, 10).Find(&rows)
	for name, q := range cases {
		var plan []struct{ Detail string }
		if err := s.db.Raw("EXPLAIN QUERY PLAN "+q.Statement.SQL.String(), q.Statement.Vars...).Scan(&plan).Error; err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var details []string
		for _, p := range plan {
			details = append(details, p.Detail)
		}
		text := strings.Join(details, "; ")
		if !strings.Contains(text, "USING INDEX") || strings.Contains(text, "TEMP B-TREE") || strings.Contains(text, "SCAN payment_orders") {
			t.Errorf("%s: plan %q, want one index search without a sort", name, text)
		}
	}
}
