package repotest_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recon-dev/recon"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// recorder is a testing.TB whose Fatalf records the message and ends the
// goroutine, to test a checker that is expected to fail.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func checkFails(t *testing.T, s *repo.Store, truth map[string]repotest.Truth) string {
	t.Helper()
	r := &recorder{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		repotest.CheckLedger(r, s, truth, true)
	}()
	wg.Wait()
	return r.msg
}

// TestCheckLedgerCatchesBrokenRows plants each kind of broken row and checks
// that the ledger check names it.
func TestCheckLedgerCatchesBrokenRows(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	db := repotest.NewSQLite(t)
	ctx := context.Background()
	o := repotest.Order("L1", now)
	repotest.Seed(t, db.Store, &o)
	if msg := checkFails(t, db.Store, nil); msg != "" {
		t.Fatalf("a fresh order fails the check: %s", msg)
	}
	lookup := recon.LookupResult{Status: recon.ChannelPaid, Amount: o.Amount, Currency: o.Currency}
	if _, err := db.Store.Commit(ctx, recon.Decide(o, lookup, recon.Policy{}, now, false), repo.CommitMeta{Source: "reconcile", Now: now}); err != nil {
		t.Fatal(err)
	}
	if msg := checkFails(t, db.Store, map[string]repotest.Truth{"L1": {Status: recon.ChannelPaid}}); msg != "" {
		t.Fatalf("a clean transition fails the check: %s", msg)
	}
	for _, c := range []struct {
		name, sql string
		truth     recon.ChannelStatus
		want      string
	}{
		{"wrong state", "", recon.ChannelFailed, "recon set PAID but the channel says FAILED"},
		{"merchant told another amount", `UPDATE merchant_notifications SET payload = '{"id":"x","event":"order.paid","data":{"order_no":"L1","amount":1}}'`,
			recon.ChannelPaid, "does not match the order"},
		{"missing outbox row", "DELETE FROM merchant_notifications", recon.ChannelPaid, "outbox events []"},
		{"regressed", "UPDATE payment_orders SET status = 'PENDING'", recon.ChannelPaid, "PENDING with audit rows"},
		{"second transition", "UPDATE payment_orders SET status = 'CLOSED', version = 2", recon.ChannelPaid, "version 2 but 1 audit rows"},
	} {
		if c.sql != "" {
			if err := db.Store.DB().Exec(c.sql).Error; err != nil {
				t.Fatal(err)
			}
		}
		if msg := checkFails(t, db.Store, map[string]repotest.Truth{"L1": {Status: c.truth}}); !strings.Contains(msg, c.want) {
			t.Errorf("%s: check said %q, want it to say %q", c.name, msg, c.want)
		}
	}
}
