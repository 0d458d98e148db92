package jobs_test

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/recon-dev/recon/jobs"
	"github.com/recon-dev/recon/repo"
	"github.com/recon-dev/recon/repo/repotest"
)

// TestNotifyHungMerchantDoesNotDelayTheOthers: two merchants with 100 due
// notifications each, one whose endpoint never answers (past the 2s
// timeout), notify concurrency 4. The healthy merchant is delivered within a
// few seconds; the hung merchant's rows are paused for the rest of the pass
// by its breaker after a few failures, keep their attempts (none goes DEAD),
// and only a bounded number of them are tried.
func TestNotifyHungMerchantDoesNotDelayTheOthers(t *testing.T) {
	repotest.ForEachDB(t, func(t *testing.T, db repotest.DB) {
		e := newNotifyEnv(t, db)
		hung := newMerchant(t, e.clock)
		hung.respond = func(_ http.ResponseWriter, r *http.Request, _ string, _ int) { <-r.Context().Done() }
		ok := newMerchant(t, e.clock)
		var mu sync.Mutex
		var lastOK time.Time
		var hungBeforeOK int64 // posts to the hung merchant by the time the healthy one got its last
		var inflight, maxInflight atomic.Int64
		ok.respond = func(w http.ResponseWriter, _ *http.Request, _ string, _ int) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for m := maxInflight.Load(); n > m && !maxInflight.CompareAndSwap(m, n); m = maxInflight.Load() {
			}
			time.Sleep(time.Millisecond) // overlapping posts meet here
			mu.Lock()
			lastOK = time.Now()
			hungBeforeOK = hung.total.Load()
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}
		e.addMerchant("hung", hung.url(), merchantSecret)
		e.addMerchant("ok", ok.url(), merchantSecret)
		// The hung merchant's rows are the oldest: a claim in due order
		// takes them first.
		hungIDs := e.seed("hung", 100)
		e.clock.Advance(time.Second)
		okIDs := e.seed("ok", 100)
		e.clock.Advance(time.Second)

		d := e.dispatcher(db.Store, "d1")
		d.Concurrency, d.Timeout, d.BatchSize = 4, 2*time.Second, 200
		start := time.Now()
		res, err := d.Run(context.Background())
		took := time.Since(start)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		okDone := lastOK.Sub(start)
		mu.Unlock()
		t.Logf("healthy merchant delivered in %s (the hung one had %d posts by then); pass took %s; hung merchant posted %d times; result %+v",
			okDone.Round(time.Millisecond), hungBeforeOK, took.Round(time.Millisecond), hung.total.Load(), res)
		ok.check()
		// Concurrency 4 gives one merchant at most 2 posts in flight.
		if m := maxInflight.Load(); m > 2 {
			t.Fatalf("the healthy merchant had %d posts in flight at once; want at most 2", m)
		}
		for _, id := range okIDs {
			if row := e.get(id); row.Status != repo.NotifyDelivered {
				t.Fatalf("healthy merchant's row not delivered: %+v", row)
			}
		}
		// The healthy merchant did not wait for the hung one's posts (one
		// round of them takes the 2s timeout); the time limit is loose for
		// a loaded machine (an idle one takes well under a second).
		if hungBeforeOK > 4 || okDone > 15*time.Second {
			t.Fatalf("the healthy merchant took %s, after %d posts to the hung one; want a few seconds, without waiting for them", okDone, hungBeforeOK)
		}
		tried := 0
		for _, id := range hungIDs {
			row := e.get(id)
			if row.Status != repo.NotifyPending || row.Attempts > 1 || row.LockedBy != "" {
				t.Fatalf("hung merchant's row %+v: want PENDING, unleased, at most one attempt", row)
			}
			tried += row.Attempts
		}
		// The breaker opens after 3 failures in a row; at most the requests
		// already in flight (the per-merchant cap) finish after it.
		if tried < 3 || tried > 3+4 || int64(tried) != hung.total.Load() {
			t.Fatalf("hung merchant: %d rows tried, %d posts; want 3 to 7", tried, hung.total.Load())
		}
		if res.Delivered != 100 || res.Retried != int64(tried) || res.Dead != 0 ||
			res.Claimed != res.Delivered+res.Retried+res.Deferred+res.Released {
			t.Fatalf("result %+v", res)
		}
		run, err := db.Store.GetRun(context.Background(), res.RunID)
		if err != nil || run.Deferred != res.Deferred {
			t.Fatalf("run row %+v, %v; want deferred %d", run, err, res.Deferred)
		}

		// A later pass tries the hung merchant again (a few rows), still
		// without sending any row to DEAD through the breaker.
		e.clock.Advance(time.Minute)
		res2, err := d.Run(context.Background())
		if err != nil || res2.Dead != 0 || res2.Retried < 3 || res2.Retried > 7 {
			t.Fatalf("second pass %+v, %v", res2, err)
		}
		_ = jobs.KindNotify
	})
}
