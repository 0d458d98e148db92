package repo_test

import (
	"context"
	"strings"
	"testing"
	"time"

	mysqldrv "github.com/go-sql-driver/mysql"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// An operator's DSN with clientFoundRows=true makes MySQL report matched
// rows, not changed ones; mismatch tracking must not be fooled by it: a
// re-detection is not new, and a resolved mismatch that recurs with other
// facts reopens.
func TestClientFoundRowsInTheDSNChangesNothing(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		ctx := context.Background()
		store := db.Store
		if db.Dialect == repo.MySQL {
			cfg, err := mysqldrv.ParseDSN(db.DSN)
			if err != nil {
				t.Fatal(err)
			}
			cfg.ClientFoundRows = true
			store = repotest.DB{Dialect: db.Dialect, DSN: cfg.FormatDSN()}.Open(t)
		}
		o := repotest.Order("fr1", now)
		o.Status = recon.StatusPaid
		repotest.Seed(t, store, &o)
		m := recon.Mismatch{Kind: recon.MismatchLocalPaidChannelUnpaid, LocalStatus: recon.StatusPaid,
			ChannelStatus: recon.ChannelNotFound, LocalAmount: 1000, LocalCurrency: "CNY"}
		meta := repo.CommitMeta{Source: "test", Now: now}
		if isNew, err := store.RecordMismatch(ctx, o, m, meta); err != nil || !isNew {
			t.Fatalf("first detection: new = %v, %v", isNew, err)
		}
		meta.Now = now.Add(time.Minute)
		if isNew, err := store.RecordMismatch(ctx, o, m, meta); err != nil || isNew {
			t.Fatalf("second detection: new = %v, %v; want not new", isNew, err)
		}
		if err := store.DB().Exec("UPDATE recon_mismatches SET resolution = 'RESOLVED', resolved_by = 'ann'").Error; err != nil {
			t.Fatal(err)
		}
		m.ChannelStatus = recon.ChannelPending // different facts
		meta.Now = now.Add(2 * time.Minute)
		if isNew, err := store.RecordMismatch(ctx, o, m, meta); err != nil || !isNew {
			t.Fatalf("recurrence after resolution: new = %v, %v; want reopened", isNew, err)
		}
		ms, err := store.ListMismatches(ctx, repo.MismatchFilter{})
		if err != nil || len(ms) != 1 || ms[0].Resolution != recon.ResolutionOpen || ms[0].Occurrences != 3 {
			t.Fatalf("mismatches = %+v, %v; want one, reopened", ms, err)
		}
	})
}

func TestNormalizeMySQLDSNTurnsClientFoundRowsOff(t *testing.T) {
	got, err := repo.NormalizeDSN(repo.MySQL, "recon:pw@tcp(db:3306)/payments?clientFoundRows=true")
	if err != nil || strings.Contains(got, "clientFoundRows") {
		t.Fatalf("DSN = %q, %v; want clientFoundRows off", got, err)
	}
}
